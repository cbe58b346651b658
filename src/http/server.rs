//! Accepting connections: HTTP/1.1 and HTTP/2 (hyper-util auto), a timeout on reading request
//! headers, a cap on header size (oversized → 431 from hyper), and graceful shutdown: on
//! SIGTERM stop accepting, let in-flight requests finish within the grace period.
//!
//! [`serve`] speaks plain HTTP; [`serve_tls`] first runs a TLS handshake (certificate from
//! [`crate::tls`], ALPN picks h2 or http/1.1), bounded by [`TLS_HANDSHAKE_TIMEOUT`], off the
//! accept loop so slow handshakes cannot hold up other clients.

use super::handle;
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
    tokio::pin!(shutdown);
    loop {
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
                tokio::spawn(async move {
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
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    let _ = watcher.watch(conn.into_owned()).await;
}
