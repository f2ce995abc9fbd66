//! A connection's socket and read buffer. The connection's driver owns
//! them ([`Io::Own`]) except while a request body that must still be read
//! from the socket is out with the proxy: then they are shared with that
//! body behind a mutex ([`Io::Lent`]; both run in the one task, so it is
//! never contended: it is what makes the body `Send`), and taken back
//! once the body is gone. A body that came whole with its head is handed
//! over as bytes, so most requests never share the socket: each lock was
//! two atomic read-modify-writes, some seven per request.
//!
//! The read buffer exists only while bytes wait: it is allocated when a
//! read needs room and let go as soon as everything in it was consumed,
//! so a connection between requests, or between the events of a stream,
//! holds none.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use switchyard_proxy::read_sized::poll_read_sized;
use switchyard_proxy::server_h1::Decoder;
use tokio::io::{AsyncRead, AsyncWrite};

/// Room a read into an empty buffer gets (most request heads fit).
const FIRST_READ: usize = 4096;
/// Most room one body read asks for.
const MAX_READ: usize = 64 << 10;

/// The socket, what was read from it and not consumed yet, and where the
/// current request's body is.
pub struct ConnIo<S> {
    pub stream: S,
    pub buf: BytesMut,
    /// The current request's body framing (`Length(0)` between requests).
    pub body: Decoder,
    /// `100 Continue` is owed before the body is read: bytes of it written.
    pub continue_sent: Option<usize>,
    /// The client closed its side.
    pub eof: bool,
}

/// The connection's I/O, shared with the request body.
pub type Shared<S> = Arc<Mutex<ConnIo<S>>>;

/// Locks the connection (never contended: one task uses it).
pub fn lock<S>(io: &Shared<S>) -> MutexGuard<'_, ConnIo<S>> {
    io.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The connection's I/O as its driver holds it.
pub enum Io<S> {
    /// Its own (boxed: the connection's task stays small).
    Own(Box<ConnIo<S>>),
    /// Shared with a request body still reading from the socket.
    Lent(Shared<S>),
}

impl<S> Io<S> {
    pub fn new(stream: S, buf: BytesMut) -> Self {
        Io::Own(Box::new(ConnIo {
            stream,
            buf,
            body: Decoder::Length(0),
            continue_sent: None,
            eof: false,
        }))
    }

    /// Runs `f` on the connection (a lock only while it is lent).
    pub fn with<R>(&mut self, f: impl FnOnce(&mut ConnIo<S>) -> R) -> R {
        match self {
            Io::Own(conn) => f(conn),
            Io::Lent(shared) => f(&mut lock(shared)),
        }
    }

    /// The connection shared with a request body that reads from it.
    pub fn lend(self) -> (Self, Shared<S>) {
        let shared = match self {
            Io::Own(conn) => Arc::new(Mutex::new(*conn)),
            Io::Lent(shared) => shared,
        };
        (Io::Lent(Arc::clone(&shared)), shared)
    }

    /// Its own again once no body shares it.
    pub fn reclaim(self) -> Self {
        match self {
            Io::Lent(shared) => match Arc::try_unwrap(shared) {
                Ok(conn) => Io::Own(Box::new(
                    conn.into_inner().unwrap_or_else(PoisonError::into_inner),
                )),
                Err(shared) => Io::Lent(shared),
            },
            own => own,
        }
    }

    /// The socket and what was read, when no body shares them.
    pub fn into_inner(self) -> Option<ConnIo<S>> {
        match self.reclaim() {
            Io::Own(conn) => Some(*conn),
            Io::Lent(_) => None,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ConnIo<S> {
    /// Reads more bytes into the buffer, making room for about `want`
    /// first. `Ok(0)`: the client closed its side. With no buffer, the
    /// read goes to the stack and a buffer is allocated only for bytes
    /// that came, at their size ([`poll_read_sized`]): waiting for a
    /// client allocates nothing.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let room = want.clamp(FIRST_READ, MAX_READ);
        let n = if self.buf.capacity() == 0 {
            ready!(poll_read_sized::<_, FIRST_READ>(
                &mut self.stream,
                cx,
                &mut self.buf,
                room
            ))?
        } else {
            if self.buf.capacity() == self.buf.len() {
                self.buf.reserve(room.max(self.buf.len()));
            }
            ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut self.stream),
                cx,
                &mut self.buf
            ))?
        };
        if n == 0 {
            self.eof = true;
            self.release();
        }
        Poll::Ready(Ok(n))
    }

    /// Lets the read buffer go once it holds nothing.
    pub fn release(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
    }

    /// Writes every byte of `bufs` (one `writev` when the socket takes
    /// them), then flushes.
    pub fn poll_write_all(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut &mut [IoSlice<'_>],
    ) -> Poll<io::Result<()>> {
        while !bufs.is_empty() {
            let n = ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, bufs))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            IoSlice::advance_slices(bufs, n);
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }
}

/// Writes `bufs` whole on the connection.
pub async fn write_all<S>(io: &mut Io<S>, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    std::future::poll_fn(|cx| io.with(|conn| conn.poll_write_all(cx, &mut bufs))).await
}
