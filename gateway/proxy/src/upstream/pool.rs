//! Plain-HTTP/1 connections to one replica, driven in the request's own
//! task.
//!
//! hyper-util's pooled client runs every upstream connection as a task of
//! its own: each response chunk it reads is handed over to the request's
//! task through a channel and a wake-up. Here the connection's future
//! (hyper's `client::conn::http1::Connection`) is polled by whoever waits
//! on it: the attempt while it waits for the response head, then the
//! response body ([`PooledBody`]) as the client's connection reads it, so a
//! chunk read from the replica is written to the client in the same poll.
//!
//! - Idle connections are kept per replica and data-plane worker, at most
//!   `pool_max_idle_per_host` each,
//!   for `pool_idle_timeout_ms`: expired ones are closed when the pool is
//!   next used (no timer task; a pool with no traffic keeps its few idle
//!   sockets until then, or until a reload drops it).
//! - A connection goes back only after its response body was read to the
//!   end and it is ready for another request; a body dropped early (the
//!   client left, a cut, an error) closes it.
//! - An idle connection is polled once before reuse: one the replica closed
//!   meanwhile is seen closed and dropped. A request a reused connection
//!   could not carry (it turned out closed before the request was written)
//!   is sent again on a fresh connection, as hyper-util does.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::SendError;
use crate::worker;

mod lease;

pub use lease::PooledBody;

/// hyper's half of one HTTP/1 connection: the sender and the connection
/// future that does its I/O.
struct Conn {
    tx: http1::SendRequest<Full<Bytes>>,
    io: http1::Connection<TokioIo<TcpStream>, Full<Bytes>>,
}

impl Conn {
    /// Drives the connection's I/O; `Ready`: it is closed (or failed).
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.io).poll(cx).map(|_| ())
    }

    /// Whether an idle connection can carry another request: it is not
    /// closed (one look at the socket, with no one to wake) and hyper
    /// wants the next request.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.poll_io(&mut cx).is_pending() && !self.tx.is_closed() && self.tx.is_ready()
    }
}

/// An idle connection and since when.
type Idle = (Box<Conn>, Instant);

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
    /// Bound on the replica's response head (hyper's read buffer).
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

    /// Sends `req` (absolute URI) and returns the response once its head
    /// is in, the connection travelling inside its body.
    pub async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, SendError> {
        origin_form(&mut req, &self.shared.host);
        loop {
            let (conn, reused) = match self.shared.checkout() {
                Some(conn) => (conn, true),
                None => (self.shared.connect().await?, false),
            };
            match exchange(conn, req).await {
                Ok((resp, conn)) => {
                    let (parts, body) = resp.into_parts();
                    let body = PooledBody::new(body, conn, Arc::clone(&self.shared));
                    return Ok(Response::from_parts(parts, body));
                }
                // The connection was closed before the request went out:
                // nothing reached the replica, send it on a fresh one.
                Err((Some(again), _)) if reused => req = again,
                Err((_, e)) => return Err(SendError::Failed(e)),
            }
        }
    }
}

/// Sends `req` on `conn`, driving the connection until the response head
/// is in. On failure: the request back if it was never written, and why.
async fn exchange(
    mut conn: Box<Conn>,
    req: Request<Full<Bytes>>,
) -> Result<(Response<Incoming>, Box<Conn>), (Option<Request<Full<Bytes>>>, hyper::Error)> {
    let mut answer = std::pin::pin!(conn.tx.try_send_request(req));
    let mut io_open = true;
    let answer = poll_fn(|cx| {
        if let Poll::Ready(r) = answer.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        // The connection ending fails the answer, which is polled again.
        if io_open && conn.poll_io(cx).is_ready() {
            io_open = false;
            return answer.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await;
    match answer {
        Ok(resp) => Ok((resp, conn)),
        Err(mut e) => Err((e.take_message(), e.into_error())),
    }
}

/// hyper's connection API writes the URI as given: send the origin form
/// (`/path?query`) and a `Host` header, as the pooled client did.
fn origin_form(req: &mut Request<Full<Bytes>>, host: &HeaderValue) {
    let path = req.uri().path_and_query().cloned();
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(path.unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")));
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req.headers_mut()
        .entry(header::HOST)
        .or_insert_with(|| host.clone());
}

impl Shared {
    /// The most recently used idle connection that is still usable.
    fn checkout(&self) -> Option<Box<Conn>> {
        let mut idle = self.idle[worker::shard()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while let Some((mut conn, since)) = idle.pop() {
            if since.elapsed() < self.idle_timeout && conn.usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Takes back a connection whose response was read to the end.
    fn checkin(&self, mut conn: Box<Conn>) {
        if self.max_idle == 0 || !conn.usable() {
            return;
        }
        let mut idle = self.idle[worker::shard()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Oldest first: close the ones past their idle timeout.
        let expired = idle
            .iter()
            .take_while(|(_, since)| since.elapsed() >= self.idle_timeout)
            .count();
        idle.drain(..expired);
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Box<Conn>, SendError> {
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
        let (tx, io) = http1::Builder::new()
            .max_buf_size(self.max_buf)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Connect(Box::new(e)))?;
        // Boxed: a connection's state is large, and futures and bodies
        // that hold it inline are moved (copied) several times a request.
        Ok(Box::new(Conn { tx, io }))
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
