//! A deadline for a connection's first byte.
//!
//! A client that connects and sends nothing must not hold its connection
//! forever (under hyper-util's HTTP/1 + h2c auto-detection, which waited
//! without a deadline for the bytes telling the versions apart, all 20 of
//! 20 silent connections were still open after 120 s with a 5 s timeout).
//! [`FirstByte`] fails the connection's reads once `header_read_timeout_ms`
//! has passed since accept without a byte, and counts it as silent; after
//! the first byte, the connection's own head deadline takes over
//! ([`crate::http1`]; hyper's for HTTP/2 and the admin API).
//! [`AdminListener`] gives the admin API's connections the same deadline.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use switchyard_proxy::Proxy;
use switchyard_proxy::connections::Connections;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// The admin listener for `axum::serve`: every accepted connection must
/// send its first byte within the serving config's
/// `header_read_timeout_ms`.
pub struct AdminListener {
    inner: TcpListener,
    proxy: Arc<Proxy>,
    /// Silent admin connections (not part of the data plane's counts).
    conns: Arc<Connections>,
}

impl AdminListener {
    /// Wraps the bound admin listener.
    pub fn new(inner: TcpListener, proxy: Arc<Proxy>) -> Self {
        Self {
            inner,
            proxy,
            conns: Arc::default(),
        }
    }
}

impl axum::serve::Listener for AdminListener {
    type Io = FirstByte<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let within = self
            .proxy
            .snapshot()
            .config
            .server
            .limits
            .header_read_timeout;
        (
            FirstByte::new(stream, within, Arc::clone(&self.conns)),
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An I/O stream whose reads fail if its first byte takes too long.
pub struct FirstByte<S> {
    inner: S,
    /// Until the first byte: when the connection is given up.
    deadline: Option<Pin<Box<Sleep>>>,
    conns: Arc<Connections>,
}

impl<S> FirstByte<S> {
    /// `inner` must send its first byte within `within` (counted in
    /// `conns` as silent if it does not).
    pub fn new(inner: S, within: Duration, conns: Arc<Connections>) -> Self {
        Self {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
            conns,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstByte<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.deadline = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                this.deadline = None;
                this.conns.closed_silent();
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within header_read_timeout_ms of connecting",
                )))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstByte<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_fails_at_the_deadline_and_a_talking_one_never() {
        let conns = Arc::new(Connections::default());
        let (_client, server) = tokio::io::duplex(64);
        let mut silent = FirstByte::new(server, Duration::from_millis(300), Arc::clone(&conns));
        let mut buf = [0u8; 8];
        let err = silent.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(conns.silent(), 1);

        let (mut client, server) = tokio::io::duplex(64);
        let mut talking = FirstByte::new(server, Duration::from_millis(300), Arc::clone(&conns));
        client.write_all(b"G").await.unwrap();
        assert_eq!(talking.read(&mut buf).await.unwrap(), 1);
        let later = tokio::time::timeout(Duration::from_secs(5), talking.read(&mut buf)).await;
        assert!(
            later.is_err(),
            "after the first byte there is no deadline here"
        );
        assert_eq!(conns.silent(), 1);
    }
}
