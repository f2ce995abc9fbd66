//! The response body that carries its connection (see `pool.rs`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use sync_wrapper::SyncWrapper;

use super::{Conn, Shared};

/// A response body that drives its own HTTP/1 connection while it is read,
/// and gives the connection back to its pool once read to the end.
pub struct PooledBody {
    body: Incoming,
    /// `None` once the connection closed or went back to the pool. Only
    /// touched through `&mut`: the wrapper makes the body `Sync`.
    conn: Option<SyncWrapper<Box<Conn>>>,
    pool: Arc<Shared>,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody")
            .field("connection", &self.conn.is_some())
            .finish_non_exhaustive()
    }
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
