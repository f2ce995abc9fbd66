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
//! `body_read`, `target` (model named), then per attempt `admitted` →
//! `sending` (may add `traceparent` to the upstream headers) → `answered` →
//! `attempt_done`, with `retry_budget`, `queue_wait` and `shed` where they
//! happen; `attempts_exhausted` when the loop gives up; `failed` when the
//! answer is the gateway's own error; `respond` when the answer is ready;
//! `on_write` per chunk sent; `finish` at the end.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use switchyard_config::Replica;
use switchyard_router::Admitted;

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
    /// The body is in: what follows until the first upstream send is ours.
    fn body_read(&mut self) {}
    /// The client named `model` (`group` or `group@version`).
    fn target(&mut self, model: &str) {}
    /// An attempt took a slot on `admitted`.
    fn admitted(&mut self, admitted: &Admitted<'_>) {}
    /// The attempt's request is about to be sent; `headers` are its headers.
    fn sending(&mut self, headers: &mut HeaderMap) {}
    /// The replica's answer is in (headers, and for SSE the first event).
    fn answered(&mut self) {}
    /// An attempt ended with `result` after `latency`; `retry` says whether
    /// the loop may try another replica.
    fn attempt_done(
        &mut self,
        result: &Result<Response<ProxyBody>, ProxyError>,
        retry: bool,
        latency: Duration,
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
    /// The body ended (`completed`) or was dropped early. Called once.
    fn finish(&mut self, completed: bool) {}
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
