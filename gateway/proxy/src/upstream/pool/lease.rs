//! The response body that carries its connection (see `pool.rs`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::h1::{Decoded, Decoder, H1Error};
use super::{Conn, Shared};

/// A response body that reads its own HTTP/1 connection as it is polled,
/// and gives the connection back to its pool once read to the end.
pub struct PooledBody {
    /// `None` once the connection closed, failed or went back to the pool.
    conn: Option<Conn>,
    decoder: Decoder,
    /// Whether the connection may carry another request after this body.
    keep_alive: bool,
    pool: Arc<Shared>,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody")
            .field("connection", &self.conn.is_some())
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

impl PooledBody {
    pub(super) fn new(conn: Conn, decoder: Decoder, keep_alive: bool, pool: Arc<Shared>) -> Self {
        let mut body = Self {
            conn: Some(conn),
            decoder,
            keep_alive,
            pool,
        };
        // An empty body may never be polled (hyper looks at
        // `is_end_stream`): its connection goes back now.
        if body.decoder.is_done() {
            body.finish();
        }
        body
    }

    /// The body was read to its end: the connection may carry another
    /// request (or is closed).
    fn finish(&mut self) {
        self.decoder = Decoder::Done;
        if let Some(conn) = self.conn.take()
            && self.keep_alive
        {
            self.pool.checkin(conn);
        }
    }

    /// An error ends the body; the connection is never reused.
    fn fail(&mut self, e: H1Error) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        self.conn = None;
        self.decoder = Decoder::Done;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut conn.buf) {
                Err(e) => return this.fail(e),
                Ok(Decoded::Data(bytes)) => {
                    if let Err(e) = this.decoder.settle(&mut conn.buf) {
                        return this.fail(e);
                    }
                    conn.release();
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => {
                    // Closed by the replica: the end only of a body that
                    // ends that way.
                    this.conn = None;
                    return match this.decoder.eof() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => this.fail(e),
                    };
                }
                Ok(_) => {}
                Err(e) => return this.fail(e.into()),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            Decoder::Length(n) => SizeHint::with_exact(n),
            Decoder::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
impl PooledBody {
    /// Bytes of read buffer this body holds (its allocation's size).
    pub(crate) fn held_buffer(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.buf.capacity())
    }
}
