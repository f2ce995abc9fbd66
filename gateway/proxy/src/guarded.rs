//! The wrapper that holds a replica's concurrency slot for exactly as long
//! as its answer streams.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::upstream::UpstreamBody;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use switchyard_router::InFlightGuard;
use sync_wrapper::SyncWrapper;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::admission::Release;
use crate::body::{BoxError, StreamBroken, sse_error_event};
use crate::error::chain;
use crate::events::EventFramer;
use crate::lazy_deadline::LazyDeadline;
use crate::observe::{OutcomeSlot, StreamOutcome};
use crate::sse::SseWatch;

pin_project_lite::pin_project! {
    /// A replica's response body on its way to the client.
    ///
    /// - Holds the replica's [`InFlightGuard`]: the slot is released when the
    ///   last frame has been read or when hyper drops the body because the
    ///   client went away, so streams and disconnects are counted right.
    /// - Enforces the idle timeout between frames; for SSE, between `data:`
    ///   events: comments (a replica's `: ping`) do not keep a stream alive.
    /// - For SSE, forwards only whole events ([`EventFramer`]): an
    ///   unfinished event is held until its blank line arrives, so a cut
    ///   drops it and the error event follows whole events.
    /// - For SSE, sends a `: keep-alive` comment when the replica has been
    ///   silent for `sse_keepalive_ms` (always between events), so proxies
    ///   in front of the client do not time out a stream whose model is
    ///   thinking. It does not reset the idle timeout.
    /// - Coalesces: frames the replica has already sent are forwarded as one
    ///   write instead of one write each (a fast token stream would otherwise
    ///   cost a syscall per token). It never waits to fill a batch.
    /// - Never lets a broken stream look finished: for SSE, an upstream error
    ///   or stall ends the stream with an in-band error event (and no
    ///   `[DONE]`), and so does an SSE stream the replica ends cleanly but
    ///   unfinished (no `[DONE]`, no `finish_reason`: a silent truncation);
    ///   for other bodies (and encoded streams, where nothing may be
    ///   appended) the error aborts the response, which the client sees as
    ///   a reset or a short body, never as a complete answer.
    /// - Records how it ended in its [`OutcomeSlot`].
    pub struct GuardedBody {
        #[pin]
        inner: UpstreamBody,
        // The idle timeout's timer, and when the silence it times began
        // (the last data, or the first wait).
        idle: LazyDeadline,
        idle_timeout: Duration,
        data_since: Option<Instant>,
        guard: Option<InFlightGuard>,
        // After `guard`: fields drop in order, so the slot is free before
        // the queued request this wakes looks for one.
        release: Option<Release>,
        sse: Option<Sse>,
        outcome: OutcomeSlot,
        done: bool,
        // Bytes read before the response was committed, delivered first.
        prefix: Option<Bytes>,
        // The replica's body already ended (it was read whole).
        inner_done: bool,
        // The item polled past the end of a coalesced batch, delivered next.
        held: Option<Option<Result<Frame<Bytes>, BoxError>>>,
        // SSE keep-alive: the silence that triggers one, its timer, and
        // when the silence began (the last chunk or keep-alive, or the first
        // wait).
        keepalive: Option<(Duration, LazyDeadline)>,
        chunk_since: Option<Instant>,
        // A break is reported as `StreamBroken` for the resume layer
        // (`resume/`) instead of ending with an error event here.
        resumable: bool,
        // SSE: resolves when the shutdown grace period is over.
        closing: Option<Closing>,
        // A non-SSE body's cut, reported on the next poll: the poll in
        // between lets hyper flush the head and the bytes before it.
        cut: Option<String>,
        cut_deferred: bool,
    }
}

/// An event stream's state: whole-event framing and the end watch.
#[derive(Debug, Default)]
pub struct Sse {
    /// Splits the bytes into whole events, holding a partial one.
    pub framer: EventFramer,
    /// Whether the stream was finished properly.
    pub watch: SseWatch,
}

/// The shutdown signal one stream waits on; only touched through `&mut`.
type Closing = SyncWrapper<Pin<Box<WaitForCancellationFutureOwned>>>;

/// Why a stream still running at the end of the grace period ends.
const SHUTDOWN: &str = "the gateway is shutting down: the stream was still running when its shutdown grace period ended";

/// Upper bound of one coalesced write.
const COALESCE_MAX: usize = 64 << 10;

impl GuardedBody {
    /// Wraps `inner`; `sse` (framing state carried over from the commit)
    /// selects whole-event forwarding and the in-band error event.
    pub fn new(
        inner: UpstreamBody,
        guard: InFlightGuard,
        release: Release,
        idle_timeout: Duration,
        sse: Option<Sse>,
        outcome: OutcomeSlot,
    ) -> Self {
        Self {
            inner,
            idle: LazyDeadline::default(),
            idle_timeout,
            data_since: None,
            guard: Some(guard),
            release: Some(release),
            sse,
            outcome,
            done: false,
            prefix: None,
            inner_done: false,
            held: None,
            keepalive: None,
            chunk_since: None,
            resumable: false,
            closing: None,
            cut: None,
            cut_deferred: false,
        }
    }

    /// Ends an SSE stream with an error event naming the shutdown when
    /// `token` is cancelled (the grace period is over). One small
    /// allocation per event stream; other bodies are not watched.
    pub fn watch_closing(&mut self, token: &CancellationToken) {
        if self.sse.is_some() {
            self.closing = Some(SyncWrapper::new(Box::pin(token.clone().cancelled_owned())));
        }
    }

    /// Reports a break of this SSE stream as a [`StreamBroken`] error and
    /// records no outcome: the resume layer continues the answer or ends it.
    pub fn set_resumable(&mut self) {
        self.resumable = self.sse.is_some();
    }

    /// Sends `: keep-alive` comments after `every` of upstream silence
    /// (`None`: never). Only meaningful for SSE bodies.
    pub fn set_keepalive(&mut self, every: Option<Duration>) {
        self.keepalive = every.map(|d| (d, LazyDeadline::default()));
    }

    /// Sends `prefix` (read before the response was committed: whole SSE
    /// events up to the first `data:` one, or the start of a body) ahead of
    /// the rest; `ended`: that was the whole body.
    pub fn set_prefix(&mut self, prefix: Bytes, ended: bool) {
        if let Some(sse) = &mut self.sse {
            sse.watch.feed(&prefix);
        }
        self.prefix = (!prefix.is_empty()).then_some(prefix);
        self.inner_done = ended;
    }
}

/// The SSE comment sent while a committed stream's replica is silent.
const KEEPALIVE: &[u8] = b": keep-alive\n\n";

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
        if let Some(prefix) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        // A reload removed this replica and its drain window is over.
        let retired = this.guard.as_ref().is_some_and(|g| g.stats().is_retired());
        let failure = if let Some(cut) = this.cut.take() {
            cut
        } else {
            loop {
                if retired {
                    break "replica was removed from the config and its drain window is over"
                        .to_owned();
                }
                let next = match this.held.take() {
                    Some(item) => Poll::Ready(item),
                    None if *this.inner_done => Poll::Ready(None),
                    None => this.inner.as_mut().poll_frame(cx),
                };
                match next {
                    Poll::Ready(Some(Ok(frame))) => {
                        let first = match frame.into_data() {
                            Ok(data) => data,
                            Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                        };
                        let data = coalesce(first, this.inner.as_mut(), this.held, cx);
                        // The timers are not moved (see `lazy_deadline.rs`):
                        // only when the silence began.
                        let now = Instant::now();
                        *this.chunk_since = Some(now);
                        let Some(sse) = this.sse.as_mut() else {
                            *this.data_since = Some(now);
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        };
                        let framed = match sse.framer.push_bytes(data) {
                            Ok(framed) => framed,
                            Err(e) => break e.to_string(),
                        };
                        if framed.data_events > 0 {
                            *this.data_since = Some(now);
                        }
                        if framed.events.is_empty() {
                            continue;
                        }
                        sse.watch.feed(&framed.events);
                        return Poll::Ready(Some(Ok(Frame::data(framed.events))));
                    }
                    Poll::Ready(None) => {
                        let Some(sse) = this.sse.as_mut() else {
                            break String::new();
                        };
                        let partial = sse.framer.partial();
                        if partial.is_empty() && sse.watch.finished() {
                            break String::new();
                        }
                        if partial.is_empty() {
                            break "replica ended the stream without finishing it (no [DONE], no finish_reason)"
                            .to_owned();
                        }
                        // The last event lacks its blank line. Terminated, would
                        // it finish the stream? Then it is the end; else it is a
                        // cut, and the partial event is dropped.
                        let mut watch = sse.watch.clone();
                        watch.feed(partial);
                        if !watch.finished() {
                            break "replica closed the stream in the middle of an event".to_owned();
                        }
                        let mut last = BytesMut::from(partial);
                        last.extend_from_slice(b"\n\n");
                        end(this.done, this.guard, this.release, this.outcome);
                        return Poll::Ready(Some(Ok(Frame::data(last.freeze()))));
                    }
                    Poll::Ready(Some(Err(e))) => {
                        // The connection broke after the answer's end
                        // marker (`finish_reason`, `[DONE]`) and between
                        // events: the client has the whole answer, as when
                        // a replica closes cleanly there.
                        if let Some(sse) = this.sse.as_ref()
                            && sse.framer.partial().is_empty()
                            && sse.watch.finished()
                        {
                            tracing::debug!(error = %chain(&*e), "replica connection broke after the answer finished");
                            break String::new();
                        }
                        break format!("replica stream failed: {}", chain(&*e));
                    }
                    Poll::Pending => {
                        if let Some(closing) = this.closing.as_mut()
                            && closing.get_mut().as_mut().poll(cx).is_ready()
                        {
                            // Never resumed: the gateway is going away.
                            *this.resumable = false;
                            break SHUTDOWN.to_owned();
                        }
                        // The silences start with the first wait.
                        let mut now = None;
                        let mut now = || *now.get_or_insert_with(Instant::now);
                        let silent = *this.data_since.get_or_insert_with(&mut now);
                        if this
                            .idle
                            .poll_expired(cx, silent + *this.idle_timeout)
                            .is_ready()
                        {
                            break format!(
                                "replica sent no {} for {} ms",
                                if this.sse.is_some() {
                                    "data event"
                                } else {
                                    "data"
                                },
                                this.idle_timeout.as_millis()
                            );
                        }
                        if let Some((every, timer)) = this.keepalive.as_mut()
                            && timer
                                .poll_expired(
                                    cx,
                                    *this.chunk_since.get_or_insert_with(now) + *every,
                                )
                                .is_ready()
                        {
                            *this.chunk_since = Some(Instant::now());
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                                KEEPALIVE,
                            )))));
                        }
                        return Poll::Pending;
                    }
                }
            }
        };
        if failure.is_empty() {
            end(this.done, this.guard, this.release, this.outcome);
            return Poll::Ready(None);
        }
        if this.sse.is_none() && !*this.resumable && failure != SHUTDOWN && !*this.cut_deferred {
            *this.cut_deferred = true;
            // The upstream connection is driven in this poll (`upstream/`),
            // so a cut can arrive in the same poll as the bytes before it;
            // erroring now would make hyper drop its unflushed head and
            // bytes. Yield once: the client gets the head and a short body.
            *this.cut = Some(failure);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        *this.done = true;
        if let Some(mut guard) = this.guard.take()
            && failure != SHUTDOWN
        {
            // The replica failed (a shutdown is not its fault).
            guard.fail_late();
        }
        tracing::warn!(error = %failure, "response body cut");
        if *this.resumable {
            return Poll::Ready(Some(Err(Box::new(StreamBroken(failure)))));
        }
        if this.sse.is_some() {
            this.outcome.set(StreamOutcome::ErrorEvent);
            Poll::Ready(Some(Ok(Frame::data(sse_error_event(&failure)))))
        } else {
            this.outcome.set(StreamOutcome::Cut);
            Poll::Ready(Some(Err(failure.into())))
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.sse, &self.prefix) {
            (Some(_), _) => SizeHint::default(),
            (None, Some(prefix)) if self.inner_done => SizeHint::with_exact(prefix.len() as u64),
            (None, _) if self.inner_done => SizeHint::with_exact(0),
            (None, Some(prefix)) => {
                let rest = self.inner.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + prefix.len() as u64);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + prefix.len() as u64);
                }
                hint
            }
            (None, None) => self.inner.size_hint(),
        }
    }
}

/// The replica finished: free the slot, record a complete answer.
fn end(
    done: &mut bool,
    guard: &mut Option<InFlightGuard>,
    release: &mut Option<Release>,
    outcome: &OutcomeSlot,
) {
    *done = true;
    guard.take();
    release.take();
    outcome.set(StreamOutcome::Complete);
}

/// `first`, plus the data frames `inner` already has, up to
/// [`COALESCE_MAX`]; whatever ends the batch early is kept in `held`.
fn coalesce(
    first: Bytes,
    mut inner: Pin<&mut UpstreamBody>,
    held: &mut Option<Option<Result<Frame<Bytes>, BoxError>>>,
    cx: &mut Context<'_>,
) -> Bytes {
    let mut batch: Option<BytesMut> = None;
    while batch.as_ref().map_or(first.len(), BytesMut::len) < COALESCE_MAX {
        let more = match inner.as_mut().poll_frame(cx) {
            Poll::Pending => break,
            Poll::Ready(Some(Ok(frame))) if frame.is_data() => frame.into_data(),
            Poll::Ready(other) => {
                *held = Some(other);
                break;
            }
        };
        if let Ok(more) = more {
            batch
                .get_or_insert_with(|| BytesMut::from(&first[..]))
                .extend_from_slice(&more);
        }
    }
    batch.map_or(first, BytesMut::freeze)
}
