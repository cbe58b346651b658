//! Closes connections on which nothing has been read or written for a while. hyper times out
//! a slow request head (`header_read_timeout`) but keeps an idle keep-alive connection open
//! for ever, and each one holds its read and write buffers (about 24 KiB measured, README:
//! Reliability): a client that opens thousands and leaves them idle would hold that memory
//! until the pod is OOM-killed. An [`IdleTimeout`] stream fails the next read once
//! [`IDLE_TIMEOUT`] has passed without any I/O, and hyper then closes the connection.
//!
//! Every decision completes well within the timeout (IdP and Redis calls have their own,
//! shorter timeouts), so a request in flight is never cut. Clients' pools (Traefik's Go
//! transport) retry an idempotent request that meets a connection closed while idle.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection may see no I/O at all before it is closed. Longer than any decision
/// takes, shorter than the minutes an abandoned keep-alive connection would otherwise live.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A stream that fails reads after `timeout` without I/O.
pub struct IdleTimeout<I> {
    inner: I,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<I> IdleTimeout<I> {
    pub fn new(inner: I, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn touch(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.timeout);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for IdleTimeout<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn reads_fail_only_after_the_timeout_without_io() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = IdleTimeout::new(server, Duration::from_secs(60));
        let mut client = client;
        let mut buf = [0u8; 8];
        // Activity keeps it alive past the timeout.
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(40)).await;
            client.write_all(b"ping").await.unwrap();
            assert_eq!(server.read(&mut buf).await.unwrap(), 4);
        }
        // Writing counts as activity too.
        tokio::time::advance(Duration::from_secs(40)).await;
        server.write_all(b"pong").await.unwrap();
        tokio::time::advance(Duration::from_secs(40)).await;
        client.write_all(b"x").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 1);
        // Then silence: the read fails once 60 s have passed, not before.
        let read = server.read(&mut buf);
        tokio::pin!(read);
        assert!(
            tokio::time::timeout(Duration::from_secs(59), &mut read)
                .await
                .is_err()
        );
        let err = read.await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
