//! A replica's response body, from either way of reaching it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use sync_wrapper::SyncWrapper;

use super::pool::{Conn, Shared};

/// The body of a replica's answer: from hyper-util's pooled client
/// (HTTPS, HTTP/2), or from a connection of our own that this body drives.
pub enum UpstreamBody {
    /// The connection runs in a task of its own.
    Legacy(Incoming),
    /// The connection is polled by this body (see `pool.rs`).
    Pooled(PooledBody),
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpstreamBody::Legacy(_) => "UpstreamBody::Legacy",
            UpstreamBody::Pooled(_) => "UpstreamBody::Pooled",
        })
    }
}

impl From<Incoming> for UpstreamBody {
    fn from(body: Incoming) -> Self {
        UpstreamBody::Legacy(body)
    }
}

/// A response body that drives its own HTTP/1 connection while it is read,
/// and gives the connection back to its pool once read to the end.
pub struct PooledBody {
    body: Incoming,
    /// `None` once the connection closed or went back to the pool. Only
    /// touched through `&mut`: the wrapper makes the body `Sync`.
    conn: Option<SyncWrapper<Box<Conn>>>,
    pool: Arc<Shared>,
}

impl PooledBody {
    pub(super) fn new(body: Incoming, conn: Box<Conn>, pool: Arc<Shared>) -> Self {
        Self {
            body,
            conn: Some(SyncWrapper::new(conn)),
            pool,
        }
    }

    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                // Read to the end: the connection may carry another request.
                if let Some(conn) = self.conn.take() {
                    self.pool.checkin(conn.into_inner());
                }
            }
            // Never reused after an error.
            Poll::Ready(Some(Err(_))) => self.conn = None,
            _ => {}
        }
        polled
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // The body first (it tells the connection it wants more), then the
        // connection's I/O, which may have put a frame in; then the body
        // again. Both register this task's waker.
        if let Poll::Ready(frame) = this.poll_body(cx) {
            return Poll::Ready(frame);
        }
        match this.conn.as_mut() {
            Some(conn) => {
                if conn.get_mut().poll_io(cx).is_ready() {
                    // Closed: the body sees its end or an error next.
                    this.conn = None;
                }
            }
            None => return Poll::Pending,
        }
        this.poll_body(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Legacy(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Pooled(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Legacy(b) => b.is_end_stream(),
            UpstreamBody::Pooled(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Legacy(b) => b.size_hint(),
            UpstreamBody::Pooled(b) => b.size_hint(),
        }
    }
}
