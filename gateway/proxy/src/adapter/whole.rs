//! A body translated as a whole: collected (bounded), mapped once, sent.
//! For non-streaming answers whose shape changes (Bedrock Converse JSON,
//! AWS error JSON); the replica's slot guard lives in the inner body and is
//! released when it ends.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use crate::body::{BoxError, ProxyBody};

/// Largest answer translated; beyond it the response is cut with an error.
const MAX: usize = 16 << 20;

/// The mapping applied to the complete body.
pub type MapFn = Box<dyn FnOnce(&[u8]) -> Bytes + Send + Sync>;

/// Collects `inner`, then yields `map(all bytes)` as one frame.
pub struct Whole {
    inner: ProxyBody,
    buf: BytesMut,
    map: Option<MapFn>,
}

impl Whole {
    /// Wraps `inner`.
    pub fn new(inner: ProxyBody, map: MapFn) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            map: Some(map),
        }
    }
}

impl Body for Whole {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.map.is_none() {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if this.buf.len() + data.len() > MAX {
                            this.map = None;
                            return Poll::Ready(Some(Err(
                                "replica answer too large to translate".into()
                            )));
                        }
                        this.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    this.map = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    let Some(map) = this.map.take() else {
                        return Poll::Ready(None);
                    };
                    return Poll::Ready(Some(Ok(Frame::data(map(&this.buf)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.map.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
