//! Accepting connections: HTTP/1.1 and HTTP/2 (hyper-util auto), a timeout on reading request
//! headers, a cap on header size (oversized → 431 from hyper), and graceful shutdown: on
//! SIGTERM stop accepting, let in-flight requests finish within the grace period.
//!
//! A connection with no I/O for [`IDLE_TIMEOUT`] is closed ([`super::idle_timeout`]).
//! At most `max_connections` connections are served at once: beyond that the accept loop
//! waits, so new connections queue in the kernel's listen backlog (and past it are refused by
//! the kernel) instead of growing memory until the pod is OOM-killed.
//!
//! [`serve`] speaks plain HTTP; [`serve_tls`] first runs a TLS handshake (certificate from
//! [`crate::tls`], ALPN picks h2 or http/1.1), bounded by [`TLS_HANDSHAKE_TIMEOUT`], off the
//! accept loop so slow handshakes cannot hold up other clients.

use super::handle;
use super::idle_timeout::{IDLE_TIMEOUT, IdleTimeout};
use crate::app::CurrentApp;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Largest request head we accept (cookies included).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a client may take to finish the TLS handshake (slowloris handshakes are dropped).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    // HTTP/2 has no header-read timeout: ping idle connections and drop dead ones.
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    b
}

/// Serves plain HTTP until `shutdown` completes, then drains connections for at most `grace`.
/// Each request is answered by the [`crate::app::App`] current when it arrives.
pub async fn serve(
    app: Arc<CurrentApp>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    serve_with(app, listener, None, shutdown, grace).await;
}

/// Serves HTTPS with `tls` (see [`crate::tls::acceptor`]); otherwise the same as [`serve`].
pub async fn serve_tls(
    app: Arc<CurrentApp>,
    listener: TcpListener,
    tls: TlsAcceptor,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    serve_with(app, listener, Some(tls), shutdown, grace).await;
}

async fn serve_with(
    app: Arc<CurrentApp>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let builder = Arc::new(builder());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let current = app.load();
    let limit = current.config.max_connections;
    let metrics = current.metrics.clone();
    drop(current);
    let slots = Arc::new(tokio::sync::Semaphore::new(limit));
    tokio::pin!(shutdown);
    loop {
        // A free slot first, then a connection: at the limit, accepting waits.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics
                    .connection_limit_reached
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    code = "server.connection_limit",
                    limit,
                    "connection limit reached; new connections wait"
                );
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // Subscribed now, before a shutdown can start: shutdown also waits (within the
                // grace period) for connections still in their TLS handshake.
                let watcher = graceful.watcher();
                let app = app.clone();
                let builder = builder.clone();
                let tls = tls.clone();
                let open = metrics.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let _open = OpenConnection::new(open);
                    let Some(tls) = tls else {
                        return serve_connection(&builder, app, peer.ip(), stream, watcher).await;
                    };
                    if let Some(stream) = handshake(&tls, stream).await {
                        serve_connection(&builder, app, peer.ip(), stream, watcher).await;
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining connections");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
}

/// Counts a connection in `portcullis_open_connections` while it lives.
struct OpenConnection(Arc<crate::metrics::Metrics>);

impl OpenConnection {
    fn new(metrics: Arc<crate::metrics::Metrics>) -> Self {
        metrics
            .open_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .open_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The TLS handshake, or `None` if it fails or takes longer than [`TLS_HANDSHAKE_TIMEOUT`].
async fn handshake(
    tls: &TlsAcceptor,
    stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        // Scanners and clients that distrust the certificate: routine, not a server problem.
        Ok(Err(e)) => {
            tracing::debug!(code = "tls.handshake_failed", error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(code = "tls.handshake_timeout", "TLS handshake timed out");
            None
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 on one (plain or TLS) connection until it closes or is drained.
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    app: Arc<CurrentApp>,
    peer: std::net::IpAddr,
    io: I,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let app = app.load();
        async move { Ok::<_, Infallible>(handle(&app, Some(peer), req).await) }
    });
    let io = IdleTimeout::new(io, IDLE_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    let _ = watcher.watch(conn.into_owned()).await;
}
