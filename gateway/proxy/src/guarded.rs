//! The wrapper that holds a replica's concurrency slot for exactly as long
//! as its answer streams.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use switchyard_router::InFlightGuard;
use tokio::time::{Instant, Sleep};

use crate::admission::Release;
use crate::body::{BoxError, sse_error_event};
use crate::sse::SseWatch;

pin_project_lite::pin_project! {
    /// A replica's response body on its way to the client.
    ///
    /// - Holds the replica's [`InFlightGuard`]: the slot is released when the
    ///   last frame has been read or when hyper drops the body because the
    ///   client went away, so streams and disconnects are counted right.
    /// - Enforces the idle timeout between frames.
    /// - For SSE, sends a `: keep-alive` comment when the replica has been
    ///   silent for `sse_keepalive_ms` (only between events, never inside
    ///   one), so proxies in front of the client do not time out a stream
    ///   whose model is thinking. It does not reset the idle timeout.
    /// - Coalesces: frames the replica has already sent are forwarded as one
    ///   write instead of one write each (a fast token stream would otherwise
    ///   cost a syscall per token). It never waits to fill a batch.
    /// - Never lets a broken stream look finished: for SSE, an upstream error
    ///   or stall ends the stream with an in-band error event (and no
    ///   `[DONE]`), and so does an SSE stream the replica ends cleanly but
    ///   unfinished (no `[DONE]`, no `finish_reason`: a silent truncation);
    ///   for other bodies the error aborts the response, which the
    ///   client sees as a reset or a short body, never as a complete answer.
    pub struct GuardedBody {
        #[pin]
        inner: Incoming,
        #[pin]
        idle: Sleep,
        idle_timeout: Duration,
        guard: Option<InFlightGuard>,
        // After `guard`: fields drop in order, so the slot is free before
        // the queued request this wakes looks for one.
        release: Option<Release>,
        sse: Option<SseWatch>,
        done: bool,
        // The item polled past the end of a coalesced batch, delivered next.
        held: Option<Option<Result<Frame<Bytes>, hyper::Error>>>,
        // SSE keep-alive: the silence that triggers one, and its timer.
        keepalive: Option<(Duration, Pin<Box<Sleep>>)>,
        // What was forwarded so far ends at an event boundary (a comment
        // may go out without splitting an event).
        at_boundary: bool,
    }
}

/// Upper bound of one coalesced write.
const COALESCE_MAX: usize = 64 << 10;

impl GuardedBody {
    /// Wraps `inner`; `sse` selects the in-band error event on failure.
    pub fn new(
        inner: Incoming,
        guard: InFlightGuard,
        release: Release,
        idle_timeout: Duration,
        sse: bool,
    ) -> Self {
        Self {
            inner,
            idle: tokio::time::sleep(idle_timeout),
            idle_timeout,
            guard: Some(guard),
            release: Some(release),
            sse: sse.then(SseWatch::default),
            done: false,
            held: None,
            keepalive: None,
            at_boundary: true,
        }
    }

    /// Sends `: keep-alive` comments after `every` of upstream silence
    /// (`None`: never). Only meaningful for SSE bodies.
    pub fn with_keepalive(mut self, every: Option<Duration>) -> Self {
        self.keepalive = every.map(|d| (d, Box::pin(tokio::time::sleep(d))));
        self
    }
}

/// The SSE comment sent while a committed stream's replica is silent.
const KEEPALIVE: &[u8] = b": keep-alive\n\n";

impl GuardedBody {
    /// Replays a frame already read from `inner` (the stream's first event,
    /// read before the response was committed) ahead of the rest.
    pub fn with_first(mut self, first: Option<Result<Frame<Bytes>, hyper::Error>>) -> Self {
        self.held = Some(first);
        self
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        // A reload removed this replica and its drain window is over.
        let retired = this.guard.as_ref().is_some_and(|g| g.stats().is_retired());
        let next = match this.held.take() {
            _ if retired => Poll::Ready(None),
            Some(item) => Poll::Ready(item),
            None => this.inner.as_mut().poll_frame(cx),
        };
        let failure = match next {
            _ if retired => {
                "replica was removed from the config and its drain window is over".to_owned()
            }
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = Instant::now() + *this.idle_timeout;
                this.idle.as_mut().reset(deadline);
                let first = match frame.into_data() {
                    Ok(data) => data,
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                };
                let mut batch: Option<BytesMut> = None;
                while batch.as_ref().map_or(first.len(), BytesMut::len) < COALESCE_MAX {
                    let more = match this.inner.as_mut().poll_frame(cx) {
                        Poll::Pending => break,
                        Poll::Ready(Some(Ok(frame))) if frame.is_data() => frame.into_data(),
                        Poll::Ready(other) => {
                            *this.held = Some(other);
                            break;
                        }
                    };
                    if let Ok(more) = more {
                        batch
                            .get_or_insert_with(|| BytesMut::from(&first[..]))
                            .extend_from_slice(&more);
                    }
                }
                let data = batch.map_or(first, BytesMut::freeze);
                if let Some((every, timer)) = this.keepalive.as_mut() {
                    timer.as_mut().reset(Instant::now() + *every);
                    *this.at_boundary = data.ends_with(b"\n\n") || data.ends_with(b"\r\n\r\n");
                }
                if let Some(watch) = this.sse.as_mut() {
                    watch.feed(&data);
                }
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Poll::Ready(None) if this.sse.as_ref().is_none_or(SseWatch::finished) => {
                *this.done = true;
                this.guard.take();
                this.release.take();
                return Poll::Ready(None);
            }
            Poll::Ready(None) => {
                "replica ended the stream without finishing it (no [DONE], no finish_reason)"
                    .to_owned()
            }
            Poll::Ready(Some(Err(e))) => format!("replica stream failed: {e}"),
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_pending() {
                    if let Some((every, timer)) = this.keepalive.as_mut()
                        && *this.at_boundary
                        && timer.as_mut().poll(cx).is_ready()
                    {
                        timer.as_mut().reset(Instant::now() + *every);
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEPALIVE)))));
                    }
                    return Poll::Pending;
                }
                format!(
                    "replica sent nothing for {} ms",
                    this.idle_timeout.as_millis()
                )
            }
        };
        *this.done = true;
        if let Some(mut guard) = this.guard.take() {
            guard.fail_late();
        }
        tracing::warn!(error = %failure, "response body cut");
        if this.sse.is_some() {
            Poll::Ready(Some(Ok(Frame::data(sse_error_event(&failure)))))
        } else {
            Poll::Ready(Some(Err(failure.into())))
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        if self.sse.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}
