//! Plain-HTTP/1 connections to one replica, driven in the request's own
//! task.
//!
//! hyper-util's pooled client runs every upstream connection as a task of
//! its own: each response chunk it reads is handed over to the request's
//! task through a channel and a wake-up. Here the socket is read by whoever
//! waits on it: the attempt while it waits for the response head, then the
//! response body ([`PooledBody`]) as the client's connection reads it, so a
//! chunk read from the replica is written to the client in the same poll.
//!
//! The wire format is ours (`h1.rs`), not hyper's client connection: that
//! one holds ~26 KiB per connection for its whole life (buffers and a
//! request channel), most of the memory of a long token stream. A
//! connection here is its socket; a read buffer exists only while bytes
//! wait to be decoded or sent on (none between two tokens of a stream).
//!
//! - Idle connections are kept per replica and data-plane worker, at most
//!   `pool_max_idle_per_host` each,
//!   for `pool_idle_timeout_ms`: expired ones are closed when the pool is
//!   next used (no timer task; a pool with no traffic keeps its few idle
//!   sockets until then, or until a reload drops it).
//! - A connection goes back only after its response body was read to the
//!   end and it is ready for another request; a body dropped early (the
//!   client left, a cut, an error) closes it.
//! - An idle connection is looked at once before reuse (a read that must
//!   find nothing): one the replica closed meanwhile is dropped. A request
//!   a reused connection could not carry (writing it failed) is sent again
//!   on a fresh connection, as hyper-util does; once written, never.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response};
use http_body::Body;
use http_body_util::Full;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::SendError;
use crate::lazy_deadline::LazyDeadline;
use crate::read_sized::poll_read_sized;
use crate::worker;

pub mod h1;
mod lease;

pub use h1::H1Error;
pub use lease::PooledBody;

/// First read size; doubled while reads fill it (large bodies), up to
/// [`MAX_READ`], and back down when they do not.
const MIN_READ: usize = 8 << 10;
const MAX_READ: usize = 256 << 10;

/// One HTTP/1 connection to the replica.
struct Conn {
    io: TcpStream,
    /// Bytes read and not yet decoded. Empty, with no allocation of its
    /// own, between answers and between the events of a stream.
    buf: BytesMut,
    /// The next read's size.
    read_size: usize,
    /// Bounds each request's wait for its answer's head, kept from one
    /// request to the next ([`LazyDeadline`]): a timer set up and torn down
    /// per request was most of the pool's atomic operations.
    timer: LazyDeadline,
}

impl Conn {
    fn new(io: TcpStream) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            read_size: MIN_READ,
            timer: LazyDeadline::default(),
        }
    }

    /// Whether an idle connection can carry another request: reading it
    /// finds nothing (no close, no stray bytes). A socket tokio knows to be
    /// drained, with no event since, answers without a syscall; a close
    /// or stray bytes are an event, and get a real read.
    fn usable(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Reads what the socket has into `buf`; `Ok(0)`: the replica closed
    /// it. The buffer is allocated once bytes are there to read.
    ///
    /// Through `poll_read`, not `try_read_buf`: after a read that does not
    /// fill the room it had, tokio marks the socket drained (epoll is
    /// edge-triggered; tokio#5866), so neither the next read nor the idle
    /// check at check-in ([`Conn::usable`]) costs a `recvfrom` that finds
    /// nothing. nginx does the same. That was one syscall per request.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        ready!(self.io.poll_read_ready(cx))?;
        // No buffer (between answers, between a stream's events): the
        // read goes to the stack and the buffer is allocated at the size
        // of what came.
        let read = if self.buf.capacity() == 0 && self.read_size == MIN_READ {
            poll_read_sized::<_, MIN_READ>(&mut self.io, cx, &mut self.buf, 2 * MIN_READ)
        } else {
            if self.buf.capacity() - self.buf.len() < self.read_size / 2 {
                self.buf.reserve(self.read_size);
            }
            tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
        };
        let room = self.read_size;
        match read {
            Poll::Ready(Ok(n)) => {
                self.read_size = if n >= room {
                    (self.read_size * 2).min(MAX_READ)
                } else if n < self.read_size / 4 {
                    (self.read_size / 2).max(MIN_READ)
                } else {
                    self.read_size
                };
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                self.release();
                Poll::Pending
            }
        }
    }

    /// Lets go of the read buffer when it holds nothing (bytes already
    /// handed on keep their allocation alive only as long as they live).
    fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Writes the request head and body.
    async fn write(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        let mut parts = [IoSlice::new(head), IoSlice::new(body)];
        let mut rest = &mut parts[..];
        IoSlice::advance_slices(&mut rest, 0);
        while !rest.is_empty() {
            let n = self.io.write_vectored(rest).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
        Ok(())
    }

    /// Reads until a final response head is in.
    async fn read_head(&mut self, max: usize, method: &Method) -> Result<h1::Head, H1Error> {
        loop {
            if !self.buf.is_empty()
                && let Some(head) = h1::parse_head(&mut self.buf, max, method)?
            {
                return Ok(head);
            }
            if poll_fn(|cx| self.poll_fill(cx)).await? == 0 {
                return Err(H1Error::Incomplete);
            }
        }
    }
}

/// An idle connection and since when.
type Idle = (Conn, Instant);

/// The idle connections of one replica and how to open new ones.
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    /// Per data-plane worker ([`crate::worker`]): a worker reuses only
    /// connections its own runtime opened. Most recently used last (reused
    /// first: its socket is warmest).
    idle: [Mutex<Vec<Idle>>; worker::SHARDS],
    /// `host:port`, resolved on each connect (DNS may change).
    authority: String,
    /// The `Host` header sent when the client's is not passed on.
    host: HeaderValue,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    /// Bound on the replica's response head.
    max_buf: usize,
}

/// How a pool is set up (from the config's limits).
pub struct PoolSettings {
    /// Idle connections kept, at most.
    pub max_idle: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Bound on the replica's response head.
    pub max_buf: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("authority", &self.shared.authority)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for the replica at `authority` (`host:port`).
    pub fn new(authority: &http::uri::Authority, settings: PoolSettings) -> Self {
        let shared = Arc::new(Shared {
            idle: std::array::from_fn(|_| Mutex::new(Vec::new())),
            authority: authority.as_str().to_owned(),
            host: HeaderValue::from_str(authority.as_str())
                .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
            max_idle: settings.max_idle,
            idle_timeout: settings.idle_timeout,
            connect_timeout: settings.connect_timeout,
            max_buf: settings.max_buf.max(8 << 10),
        });
        Self { shared }
    }

    /// Sends `req` in origin form (`/path?query`, with a `Host` header
    /// when it has none) and returns the response once its head is in, the
    /// connection travelling inside its body. See [`Pool::send_head`] for
    /// `at` and `deadline`.
    pub async fn send(
        &self,
        req: Request<Full<Bytes>>,
        at: Instant,
        deadline: Instant,
    ) -> Result<Response<PooledBody>, SendError> {
        let (mut parts, body) = req.into_parts();
        let body = full_bytes(body);
        parts
            .headers
            .entry(header::HOST)
            .or_insert_with(|| self.shared.host.clone());
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = Vec::new();
        h1::encode_head(&parts.method, path, &parts.headers, body.len(), &mut head);
        // The headers may share the client's read buffer: let it go.
        drop(parts.headers);
        self.send_head(&parts.method, &head, &body, at, deadline)
            .await
    }

    /// Sends a request whose head is already written (`head`, ending with
    /// its blank line; the request path writes it straight from the
    /// client's headers, [`h1::RequestHead`]) and its `body`.
    ///
    /// `at`: now, as the caller last read the clock (idle connections are
    /// judged by it). The answer's head must be in by `deadline`, else
    /// [`SendError::TimedOut`].
    pub async fn send_head(
        &self,
        method: &Method,
        head: &[u8],
        body: &[u8],
        at: Instant,
        deadline: Instant,
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (mut conn, reused) = match self.shared.checkout(at) {
                Some(conn) => (conn, true),
                None => match tokio::time::timeout_at(deadline, self.shared.connect()).await {
                    Ok(conn) => (conn?, false),
                    Err(_) => return Err(SendError::TimedOut),
                },
            };
            let mut timer = std::mem::take(&mut conn.timer);
            match timer.run(deadline, conn.write(head, body)).await {
                Some(Ok(())) => {}
                None => return Err(SendError::TimedOut),
                // Nothing was answered on it: send on a fresh one.
                Some(Err(_)) if reused => continue,
                Some(Err(e)) => return Err(SendError::Failed(e.into())),
            }
            let answer = timer
                .run(deadline, conn.read_head(self.shared.max_buf, method))
                .await
                .ok_or(SendError::TimedOut)?
                .map_err(SendError::Failed)?;
            conn.timer = timer;
            let (parts, ()) = answer.response.into_parts();
            let body = PooledBody::new(
                conn,
                answer.body,
                answer.keep_alive,
                Arc::clone(&self.shared),
            );
            return Ok(Response::from_parts(parts, body));
        }
    }

    /// The `Host` header this pool's requests carry.
    pub fn host(&self) -> &HeaderValue {
        &self.shared.host
    }
}

/// The bytes of a `Full` body (it is always ready: one frame or none).
fn full_bytes(mut body: Full<Bytes>) -> Bytes {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::new(&mut body).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

impl Shared {
    /// The most recently used idle connection that is still usable `now`.
    fn checkout(&self, now: Instant) -> Option<Conn> {
        let mut idle = self.idle[worker::shard()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if now - since < self.idle_timeout && conn.usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Takes back a connection whose response was read to the end.
    fn checkin(&self, mut conn: Conn) {
        if self.max_idle == 0 || !conn.buf.is_empty() || !conn.usable() {
            return;
        }
        conn.buf = BytesMut::new();
        let mut idle = self.idle[worker::shard()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Oldest first: close the ones past their idle timeout.
        let now = Instant::now();
        let expired = idle
            .iter()
            .take_while(|(_, since)| now - *since >= self.idle_timeout)
            .count();
        idle.drain(..expired);
        if idle.len() < self.max_idle {
            idle.push((conn, now));
        }
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let stream =
            tokio::time::timeout(self.connect_timeout, TcpStream::connect(&*self.authority))
                .await
                .map_err(|_| {
                    SendError::Connect(format!("connect to {} timed out", self.authority).into())
                })?
                .map_err(|e| SendError::Connect(Box::new(e)))?;
        let _ = stream.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        Ok(Conn::new(stream))
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
