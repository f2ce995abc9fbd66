//! The observer seam: how metrics, the access log, traces, costs and
//! rollout figures watch the data plane without the data plane knowing
//! any of them.
//!
//! [`Observer`] lives as long as the [`crate::Proxy`]; every request gets
//! one [`RequestObserver`] from it, lent down the phases as `&mut` and then
//! carried inside the response body, which finishes it after the last byte
//! went out (or when the client left). Every hook has a no-op default, so an
//! observer implements what it cares about and an idle feature costs a
//! virtual call that does nothing.
//!
//! Hooks, in the order a request meets them: `bind` (snapshot loaded),
//! `caller` (its tenant and key id, when authenticated), `body_read`, `target` (model named), then per attempt `admitted` →
//! `sending` (may add `traceparent` to the upstream headers) → `answered` →
//! `attempt_done`, with `retry_budget`, `queue_wait` and `shed` where they
//! happen; `attempts_exhausted` when the loop gives up; `failed` when the
//! answer is the gateway's own error; `respond` when the answer is ready;
//! `on_write` per chunk sent; `stream_end` with how the body ended, then
//! `finish`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use switchyard_config::Replica;
use switchyard_router::Admitted;
use tokio::time::Instant;

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::snapshot::Snapshot;
use crate::usage::UsageSink;

/// What a request looked like when it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// Client method.
    pub method: &'a Method,
    /// Client URI.
    pub uri: &'a Uri,
    /// Client headers (`traceparent` is read from here).
    pub headers: &'a HeaderMap,
    /// The request id (the client's, or a fresh one).
    pub request_id: &'a HeaderValue,
}

/// Watches the data plane; one per [`crate::Proxy`].
pub trait Observer: Send + Sync + 'static {
    /// A request arrived: its per-request observer.
    fn request(&self, arrival: Arrival<'_>) -> Box<dyn RequestObserver>;

    /// Where the token usage of a successful answer from `replica` is
    /// booked; `None`: answers are not metered.
    fn meter(&self, _replica: &Replica) -> Option<Arc<dyn UsageSink>> {
        None
    }

    /// A mid-stream resume's attempt on replica `index` of `snap`'s table
    /// ended as `end`. Reported here, not to the request's observer: the
    /// continuation runs inside the response body, after the request's
    /// observer was lent to it for good.
    fn resume_attempt(&self, _snap: &Snapshot, _index: usize, _end: ResumeAttempt) {}
}

/// How a continuation attempt of a mid-stream resume (`resume/`) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeAttempt {
    /// Its stream finished the client's answer.
    Complete,
    /// It never became the rest of the answer: no usable stream (error
    /// status, connect error, no first event, a refused strategy), or an
    /// answer that could not be made the rest of the client's.
    Failed,
    /// Its stream broke off too (then resumed again or ended with the
    /// error event).
    Broken,
    /// The client went away while it streamed.
    ClientGone,
}

/// Why a request was shed with 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// The group's wait queue already held `queue_size` requests.
    QueueFull = 0,
    /// It waited `queue_timeout_ms` (or until the request deadline).
    QueueTimeout = 1,
    /// The group has no queue (`queue_size: 0`).
    NoQueue = 2,
}

/// One request's observer; see the module docs for when each hook runs.
#[allow(unused_variables, reason = "default hooks ignore their arguments")]
pub trait RequestObserver: Send + Sync + 'static {
    /// The request's snapshot is loaded.
    fn bind(&mut self, snap: &Arc<Snapshot>) {}
    /// The body was in `at` (a clock reading the request path uses for its
    /// deadline and ranking too: one read of the clock, not one per use).
    /// What follows until the first upstream send is ours.
    fn body_read(&mut self, at: Instant) {}
    /// The caller is key `key` (its id, never the key) of `tenant`.
    fn caller(&mut self, tenant: &str, key: &str) {}
    /// The client named `model` (`group` or `group@version`).
    fn target(&mut self, model: &str) {}
    /// An attempt took a slot on `admitted`.
    fn admitted(&mut self, admitted: &Admitted<'_>) {}
    /// The attempt's request is about to be sent, at `at` (the attempt's
    /// start, whose reading its deadlines come from); `headers` are its
    /// headers.
    fn sending(&mut self, headers: &mut HeaderMap, at: Instant) {}
    /// The replica's answer is in (headers, and for SSE the first event).
    fn answered(&mut self) {}
    /// An attempt that started at `sent` ended with `result`; `retry` says
    /// whether the loop may try another replica. (Its latency is read off
    /// the clock only by an observer that needs it.)
    fn attempt_done(
        &mut self,
        result: &Result<Response<ProxyBody>, ProxyError>,
        retry: bool,
        sent: Instant,
    ) {
    }
    /// The loop gave up: the last failed attempt is final.
    fn attempts_exhausted(&mut self) {}
    /// A retry asked the gateway-wide budget; `granted` is its answer.
    fn retry_budget(&mut self, granted: bool) {}
    /// Time spent in the group's wait queue, and whether a slot came.
    fn queue_wait(&mut self, waited: Duration, admitted: bool) {}
    /// The request was refused with 429 for capacity.
    fn shed(&mut self, why: Shed) {}
    /// The answer is the gateway's own error `e`.
    fn failed(&mut self, e: &ProxyError) {}
    /// The answer is ready; `stream` when it is an event stream.
    fn respond(&mut self, status: StatusCode, stream: bool) {}
    /// A chunk of `len` bytes went to the client.
    fn on_write(&mut self, len: usize) {}
    /// How the response body ended; called once, just before `finish`.
    fn stream_end(&mut self, outcome: StreamOutcome) {}
    /// The body ended (`completed`) or was dropped early. Called once.
    fn finish(&mut self, completed: bool) {}
}

/// How a response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOutcome {
    /// Every byte went out and the replica finished its answer.
    Complete = 1,
    /// The replica broke off an event stream; it ended with an in-band
    /// error event (whole events before it, the partial one dropped).
    ErrorEvent = 2,
    /// The replica broke off a body that is not an event stream; the
    /// response was aborted (a reset or short body for the client).
    Cut = 3,
    /// The client went away before the end.
    ClientGone = 4,
    /// The replica broke off an event stream and another replica finished
    /// the answer (`resume/`): the client got one complete stream.
    Resumed = 5,
}

impl StreamOutcome {
    /// Fixed label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            StreamOutcome::Complete => "complete",
            StreamOutcome::ErrorEvent => "error_event",
            StreamOutcome::Cut => "cut",
            StreamOutcome::ClientGone => "client_gone",
            StreamOutcome::Resumed => "resumed",
        }
    }
}

/// Where the body wrapper holding a replica's answer (`guarded.rs`) records
/// how the replica's side ended, for the observer's
/// [`RequestObserver::stream_end`]. Made with the request and handed
/// down to its attempts (one of theirs is the answer; the others' bodies
/// are dropped unread and record nothing), not carried in the response's
/// extensions: those are a map allocated on the first insert, and a box
/// per value.
#[derive(Debug, Clone, Default)]
pub struct OutcomeSlot(Arc<AtomicU8>);

impl OutcomeSlot {
    /// Records `outcome` unless one is recorded already.
    pub fn set(&self, outcome: StreamOutcome) {
        let _ = self
            .0
            .compare_exchange(0, outcome as u8, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The recorded outcome, if any.
    pub fn get(&self) -> Option<StreamOutcome> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(StreamOutcome::Complete),
            2 => Some(StreamOutcome::ErrorEvent),
            3 => Some(StreamOutcome::Cut),
            4 => Some(StreamOutcome::ClientGone),
            5 => Some(StreamOutcome::Resumed),
            _ => None,
        }
    }
}

/// An observer that watches nothing (tests, benchmarks' baseline).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn request(&self, _arrival: Arrival<'_>) -> Box<dyn RequestObserver> {
        // A zero-sized type: boxing it does not allocate.
        Box::new(NoObserver)
    }
}

impl RequestObserver for NoObserver {}
