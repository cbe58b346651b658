//! Accepting connections: HTTP/1.1 and HTTP/2 (hyper-util auto), a timeout on reading request
//! headers, a cap on header size (oversized → 431 from hyper), and graceful shutdown: on
//! SIGTERM stop accepting, let in-flight requests finish within the grace period.
//!
//! A connection with no I/O for [`IDLE_TIMEOUT`] is closed ([`super::idle_timeout`]).
//! At most `max_connections` connections are served at once; at the limit idle connections
//! make room, and only when none is idle does accepting wait ([`super::connections`]).
//!
//! [`serve`] speaks plain HTTP; [`serve_tls`] first runs a TLS handshake (certificate from
//! [`crate::tls`], ALPN picks h2 or http/1.1), bounded by [`TLS_HANDSHAKE_TIMEOUT`], off the
//! accept loop so slow handshakes cannot hold up other clients.

use super::connections::{Admitted, Connections};
use super::idle_timeout::{IDLE_TIMEOUT, IdleTimeout};
use super::service::{Listener, service};
use crate::app::CurrentApp;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
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
    serve_with(app, listener, None, Listener::Main, shutdown, grace).await;
}

/// Serves the operations endpoints (`metrics_listen`: `/metrics`, `/ping`, `/ready`) in plain
/// HTTP, with the same limits and shutdown as [`serve`].
pub async fn serve_operations(
    app: Arc<CurrentApp>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    serve_with(app, listener, None, Listener::Operations, shutdown, grace).await;
}

/// Serves HTTPS with `tls` (see [`crate::tls::acceptor`]); otherwise the same as [`serve`].
pub async fn serve_tls(
    app: Arc<CurrentApp>,
    listener: TcpListener,
    tls: TlsAcceptor,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    serve_with(app, listener, Some(tls), Listener::Main, shutdown, grace).await;
}

async fn serve_with(
    app: Arc<CurrentApp>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    role: Listener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let builder = Arc::new(builder());
    // Every connection holds a receiver; shutdown sends `true` and then waits until all are
    // dropped (connections still in their TLS handshake included).
    let (drain, draining) = watch::channel(false);
    let current = app.load();
    let connections = Connections::new(current.config().max_connections, current.metrics().clone());
    drop(current);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors (EMFILE, ENFILE): idle connections make room,
                    // as at the connection limit. Any error: back off, keep serving the
                    // open connections.
                    if matches!(e.raw_os_error(), Some(23 | 24)) {
                        connections.out_of_descriptors();
                    }
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Then a slot: at the limit, idle connections make room, and until one is free
        // nothing more is accepted (the rest wait in the kernel's listen backlog).
        let admitted = tokio::select! {
            admitted = connections.admit() => admitted,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let draining = draining.clone();
        let app = app.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(tls) = tls else {
                return serve_connection(
                    &builder,
                    app,
                    peer.ip(),
                    role,
                    stream,
                    admitted,
                    draining,
                )
                .await;
            };
            if let Some(stream) = handshake(&tls, stream).await {
                serve_connection(&builder, app, peer.ip(), role, stream, admitted, draining).await;
            }
        });
    }
    drop(listener);
    drop(draining);
    tracing::info!("shutting down: draining connections");
    let _ = drain.send(true);
    if tokio::time::timeout(grace, drain.closed()).await.is_err() {
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

/// Serves HTTP/1.1 or HTTP/2 on one (plain or TLS) connection until it closes; closes it
/// gracefully (after the request in flight, if any) on shutdown or when the connection limit
/// asks idle connections to make room.
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    app: Arc<CurrentApp>,
    peer: std::net::IpAddr,
    role: Listener,
    io: I,
    admitted: Admitted,
    mut draining: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = TowerToHyperService::new(service(
        app,
        Some(peer),
        Some(admitted.tracked().clone()),
        role,
    ));
    let io = IdleTimeout::new(io, IDLE_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let shutting_down = async {
        // Err: the sender is gone, which only happens once the server has stopped.
        let _ = draining.wait_for(|&d| d).await;
    };
    tokio::select! {
        _ = conn.as_mut() => return,
        () = shutting_down => {}
        () = admitted.tracked().evicted() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
