//! Listener lifecycle: bind on loopback, accept loop with hyper, stop (port kept
//! bound but not listening, so connects are refused) and restart on the same port.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::Shared;

/// A bound (not yet listening) socket on `127.0.0.1:port` with `SO_REUSEADDR`.
fn bound_socket(port: u16) -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    Ok(socket)
}

/// Bind and listen on `127.0.0.1:port` (0 = any free port).
pub(crate) fn bind(port: u16) -> std::io::Result<TcpListener> {
    bound_socket(port)?.listen(1024)
}

enum State {
    Running {
        shutdown: watch::Sender<bool>,
        task: JoinHandle<()>,
    },
    Stopped {
        reserved: Option<TcpSocket>,
    },
}

/// The accept loop of one IdP.
pub(crate) struct Server {
    addr: SocketAddr,
    state: State,
}

impl Server {
    /// Start serving `listener`.
    pub(crate) fn spawn(listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) -> Self {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared, rx));
        Self {
            addr,
            state: State::Running { shutdown: tx, task },
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Stop accepting, drop every open connection, keep the port reserved.
    pub(crate) async fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        let old = std::mem::replace(&mut self.state, State::Stopped { reserved: None });
        if let State::Running { shutdown, task } = old {
            let _ = shutdown.send(true);
            let _ = task.await;
        }
        // The listener is closed now; hold the port without listening so connects are
        // refused and nobody else grabs it before restart().
        self.state = State::Stopped {
            reserved: bound_socket(self.addr.port()).ok(),
        };
    }

    /// Listen again on the same port.
    pub(crate) async fn restart(&mut self, shared: Arc<Shared>) -> std::io::Result<()> {
        let reserved = match &mut self.state {
            State::Running { .. } => return Ok(()),
            State::Stopped { reserved } => reserved.take(),
        };
        let listener = match reserved.map(|s| s.listen(1024)) {
            Some(Ok(l)) => l,
            _ => self.rebind().await?,
        };
        let addr = self.addr;
        *self = Self::spawn(listener, addr, shared);
        Ok(())
    }

    async fn rebind(&self) -> std::io::Result<TcpListener> {
        let mut last_err = None;
        for _ in 0..100 {
            match bind(self.addr.port()) {
                Ok(l) => return Ok(l),
                Err(e) => last_err = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("rebind failed")))
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        tokio::select! {
            // Either a stop request or the handle was dropped.
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(crate::routes::handle(shared, req).await) }
                        });
                        let _ = http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // e.g. EMFILE: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}
