//! Accepting connections, and resetting one on demand.
//!
//! Each connection gets a [`Conn`] so that a request can ask for its own
//! connection to be reset (`reset_before_headers`): hyper cannot do that (a
//! service error closes politely, with a FIN), so the connection task drops the
//! connection itself, and [`ResetIo`] sets `SO_LINGER` 0 on the way out, which
//! makes the kernel send an RST.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::{Shared, handler};

/// One accepted connection, as its requests see it.
pub(crate) struct Conn {
    pub(crate) shared: Arc<Shared>,
    resetting: AtomicBool,
    reset: Notify,
}

impl Conn {
    /// Asks the connection task to drop this connection with an RST. The
    /// caller should then never complete (the drop cancels it).
    pub(crate) fn reset(&self) {
        self.resetting.store(true, Ordering::Release);
        self.reset.notify_one();
    }
}

/// Serves connections until `shutdown` resolves, then closes them all.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let builder = auto::Builder::new(TokioExecutor::new());
    let (closing, _) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = Arc::new(Conn {
            shared: Arc::clone(&shared),
            resetting: AtomicBool::new(false),
            reset: Notify::new(),
        });
        let io = ResetIo {
            io: TokioIo::new(stream),
            conn: Arc::clone(&conn),
        };
        let for_svc = Arc::clone(&conn);
        let svc = service_fn(move |req| {
            let conn = Arc::clone(&for_svc);
            async move { Ok::<_, Infallible>(handler::handle(conn, req).await) }
        });
        let served = builder.serve_connection(io, svc).into_owned();
        let mut closing = closing.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = served => {}
                _ = closing.wait_for(|c| *c) => {}
                () = conn.reset.notified() => {}
            }
        });
    }
    let _ = closing.send(true);
    Ok(())
}

/// The TCP stream, which resets instead of closing when its [`Conn`] asked.
struct ResetIo {
    io: TokioIo<TcpStream>,
    conn: Arc<Conn>,
}

impl Drop for ResetIo {
    fn drop(&mut self) {
        if self.conn.resetting.load(Ordering::Acquire) {
            let _ = self.io.inner().set_zero_linger();
        }
    }
}

impl Read for ResetIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ResetIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
