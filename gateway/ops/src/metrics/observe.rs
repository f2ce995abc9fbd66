//! One request's record: what it asked, which replicas it tried and how
//! each attempt ended, when its first token and last byte left. It feeds
//! the counters, the access log line and the trace spans, and is finished
//! when the response body ends (for a stream: the end of the stream), or
//! when it is dropped because the client went away.
//!
//! It is the data plane's [`RequestObserver`]: created for each request by
//! [`crate::GatewayObserver`], lent down the phases as `&mut`, then carried
//! inside the response body, which calls [`RequestObserver::finish`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use switchyard_proxy::observe::{Arrival, Shed, StreamOutcome};
use switchyard_proxy::{ProxyBody, ProxyError, RequestObserver, Snapshot};
use switchyard_router::{Admitted, parse_model};

use super::Attempt;
use super::Recorder;
use super::handles::{Handles, Route};
use crate::telemetry::Trace;

/// Status recorded for a request whose client left before an answer
/// (nginx's "client closed request").
const CLIENT_GONE: u16 = 499;

/// One request's record; see the module docs.
pub struct Obs {
    recorder: Arc<Recorder>,
    start: Instant,
    method: Method,
    /// The path and request id, for the access log line; kept only when
    /// that line is written (each copy is two reference-count updates,
    /// atomic ones, and a fresh id's first copy allocates).
    access: Option<(Uri, HeaderValue)>,
    snap: Option<Arc<Snapshot>>,
    handles: Option<Arc<Handles>>,
    /// Index into `Handles::groups`.
    group: usize,
    /// The replica of the latest attempt.
    replica: Option<usize>,
    /// The replica whose response (any status) is the answer.
    answered_by: Option<usize>,
    attempts: u32,
    /// A failed attempt whose fate (retried, failed over, final) is decided
    /// by what comes next: its replica and retry reason.
    pending: Option<(usize, usize)>,
    error: Option<&'static str>,
    /// The replica whose answer is being passed on: its attempt is
    /// counted when the body ends, by how it ended.
    committed: Option<usize>,
    outcome: Option<StreamOutcome>,
    body_read: Option<Duration>,
    first_send: Option<Duration>,
    answered: Option<Duration>,
    /// Time spent in a wait queue, nanoseconds (written through `&self`).
    queued_ns: AtomicU64,
    trace: Option<Box<Trace>>,
    /// The caller's tenant, as an index into the snapshot's `tenants`, and
    /// its key: an index into that tenant's `keys` (no allocation), or the
    /// id of a key created at run time.
    caller: Option<(usize, CallerKey)>,
    status: u16,
    stream: bool,
    ttft: Option<Duration>,
    last_write: Option<Instant>,
    finished: bool,
}

impl Obs {
    /// Starts the record (and, when tracing is on, the request span, as a
    /// child of the client's `traceparent`).
    pub fn start(recorder: Arc<Recorder>, arrival: Arrival<'_>) -> Self {
        Self {
            recorder,
            start: Instant::now(),
            method: arrival.method.clone(),
            access: tracing::enabled!(target: "switchyard::access", tracing::Level::INFO)
                .then(|| (arrival.uri.clone(), arrival.request_id.clone())),
            snap: None,
            handles: None,
            group: usize::MAX,
            replica: None,
            answered_by: None,
            attempts: 0,
            pending: None,
            error: None,
            committed: None,
            outcome: None,
            body_read: None,
            first_send: None,
            answered: None,
            queued_ns: AtomicU64::new(0),
            trace: Trace::request(arrival),
            caller: None,
            status: CLIENT_GONE,
            stream: false,
            ttft: None,
            last_write: None,
            finished: false,
        }
    }

    fn count_attempt(&self, replica: usize, kind: Attempt) {
        if let Some(r) = self.handles.as_ref().and_then(|h| h.replicas.get(replica)) {
            r.attempts[kind as usize].inc();
        }
    }

    fn route(&self) -> Option<&Route> {
        let h = self.handles.as_ref()?;
        match self.answered_by {
            Some(i) => h.replicas.get(i).map(|r| &r.route),
            None => h.groups.get(self.group).map(|g| &g.route),
        }
    }
}

impl RequestObserver for Obs {
    /// The request's snapshot is loaded: resolve its series.
    fn bind(&mut self, snap: &Arc<Snapshot>) {
        let handles = self.recorder.metrics.handles(snap);
        self.group = handles.no_group();
        self.handles = Some(handles);
        self.snap = Some(Arc::clone(snap));
    }

    /// The body is in: what follows until the first upstream send is ours.
    fn body_read(&mut self, at: Instant) {
        self.body_read = Some(at.saturating_duration_since(self.start));
    }

    /// The caller's tenant and key id (never the key).
    fn caller(&mut self, tenant: &str, key: &str) {
        let tenants = self
            .snap
            .as_ref()
            .map_or(&[][..], |s| &s.config.tenants[..]);
        self.caller = tenants.iter().position(|t| t.name == tenant).map(|t| {
            let key = match tenants[t].keys.iter().position(|k| k.id == key) {
                Some(k) => CallerKey::Config(k),
                None => CallerKey::Runtime(key.into()),
            };
            (t, key)
        });
        if let Some(t) = &self.trace {
            t.caller(tenant, key);
        }
    }

    /// The client named `model` (`group` or `group@version`).
    fn target(&mut self, model: &str) {
        if let Some(h) = &self.handles {
            self.group = h.group_index(parse_model(model).0);
        }
        if let Some(t) = &self.trace {
            t.target(model);
        }
    }

    /// An attempt took a slot on `admitted`. Settles the previous failed
    /// attempt as retried (same group and version) or failed over.
    fn admitted(&mut self, admitted: &Admitted<'_>) {
        self.attempts += 1;
        self.replica = Some(admitted.index);
        let Some((prev, reason)) = self.pending.take() else {
            return;
        };
        let (Some(h), Some(snap)) = (&self.handles, &self.snap) else {
            return;
        };
        let entries = snap.table.entries();
        let (a, b) = (&entries[prev].replica, &admitted.entry.replica);
        let kind = if a.model == b.model && a.version == b.version {
            Attempt::Retried
        } else {
            Attempt::FailedOver
        };
        if let Some(r) = h.replicas.get(prev) {
            r.attempts[kind as usize].inc();
        }
        if let Some(g) = h.groups.get(self.group) {
            g.retries[reason].inc();
        }
    }

    /// The request is about to go to the current replica: stamps the first
    /// send and, when tracing, starts the attempt span and puts its
    /// `traceparent` in `headers`.
    fn sending(&mut self, headers: &mut HeaderMap, at: Instant) {
        if self.first_send.is_none() {
            self.first_send = Some(at.saturating_duration_since(self.start));
        }
        if let (Some(t), Some(i), Some(snap)) = (&mut self.trace, self.replica, &self.snap) {
            t.attempt(snap, i, self.attempts, headers);
        }
    }

    /// The replica's answer is in (headers, and for SSE the first event):
    /// what follows until the response leaves the handler is ours again.
    fn answered(&mut self) {
        self.answered = Some(self.start.elapsed());
    }

    /// An attempt ended with `result`; `retry` says whether the loop may
    /// try another replica.
    fn attempt_done(
        &mut self,
        result: &Result<Response<ProxyBody>, ProxyError>,
        retry: bool,
        sent: Instant,
    ) {
        let Some(replica) = self.replica else {
            return;
        };
        // Canary analysis judges versions by their attempts (a canary
        // failure rescued by a retry elsewhere still counts against it).
        let watched = self.recorder.rollouts.watching() || self.recorder.fleet_figures.watching();
        if let Some(e) = self
            .snap
            .as_ref()
            .and_then(|s| s.table.entries().get(replica))
            .filter(|_| watched)
        {
            let r = &e.replica;
            let latency = sent.elapsed();
            self.recorder
                .rollouts
                .observe(&r.model, &r.version, !retry, latency);
            self.recorder
                .fleet_figures
                .observe(&r.model, &r.version, !retry, latency);
        }
        self.answered_by = result.as_ref().ok().map(|_| replica);
        let reason = match result {
            Ok(r) if r.status().as_u16() == 429 => 0,
            Ok(_) => 1,
            Err(ProxyError::UpstreamConnect { .. }) => 2,
            Err(ProxyError::UpstreamTimeout { .. }) => 4,
            Err(_) => 3,
        };
        if let Some(t) = &mut self.trace {
            t.attempt_done(result, retry.then(|| super::REASONS[reason]));
        }
        if retry {
            self.pending = Some((replica, reason));
            return;
        }
        if result.is_ok() {
            self.committed = Some(replica);
        } else {
            self.count_attempt(replica, Attempt::Error);
        }
    }

    /// The loop gave up (no budget, no time, no candidate left): the last
    /// failed attempt is final.
    fn attempts_exhausted(&mut self) {
        if let Some((replica, reason)) = self.pending.take() {
            let kind = if reason == 4 {
                Attempt::Timeout
            } else {
                Attempt::Error
            };
            self.count_attempt(replica, kind);
        }
    }

    fn retry_budget(&mut self, granted: bool) {
        if !granted {
            self.recorder.metrics.budget_exhausted();
        }
    }

    /// Time spent in the group's wait queue, and whether a slot came.
    fn queue_wait(&mut self, waited: Duration, admitted: bool) {
        self.queued_ns
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        if let Some(g) = self.handles.as_ref().and_then(|h| h.groups.get(self.group)) {
            g.queue_wait[usize::from(!admitted)].observe(waited.as_secs_f64());
        }
    }

    /// The request was refused with 429 for capacity.
    fn shed(&mut self, why: Shed) {
        if let Some(g) = self.handles.as_ref().and_then(|h| h.groups.get(self.group)) {
            g.shed[why as usize].inc();
        }
    }

    /// The request failed with `e` (the answer is the gateway's own).
    fn failed(&mut self, e: &ProxyError) {
        self.error = Some(e.label());
    }

    /// The answer is ready: records the gateway overhead.
    fn respond(&mut self, status: StatusCode, stream: bool) {
        self.status = status.as_u16();
        self.stream = stream;
        if let (Some(read), Some(sent), Some(answered), Some(h)) = (
            self.body_read,
            self.first_send,
            self.answered,
            &self.handles,
        ) {
            let queued = Duration::from_nanos(self.queued_ns.load(Ordering::Relaxed));
            let routing = sent.saturating_sub(read).saturating_sub(queued);
            let head = self.start.elapsed().saturating_sub(answered);
            h.overhead().observe((routing + head).as_secs_f64());
        }
    }

    /// A chunk went to the client: time to first token, then the gaps.
    fn on_write(&mut self, _len: usize) {
        if !self.stream {
            return;
        }
        let now = Instant::now();
        match self.last_write {
            None => {
                let ttft = now - self.start;
                self.ttft = Some(ttft);
                if let Some(r) = self.route() {
                    r.ttft.observe(ttft.as_secs_f64());
                }
            }
            Some(prev) => {
                if let Some(r) = self.route() {
                    r.inter_token.observe((now - prev).as_secs_f64());
                }
            }
        }
        self.last_write = Some(now);
    }

    /// How the body ended: settles the committed attempt, and a broken
    /// answer is an error in the access log and the span.
    fn stream_end(&mut self, outcome: StreamOutcome) {
        self.outcome = Some(outcome);
        if let Some(replica) = self.committed.take() {
            let kind = match outcome {
                StreamOutcome::Complete => Attempt::Ok,
                StreamOutcome::ErrorEvent | StreamOutcome::Cut => Attempt::Broken,
                StreamOutcome::ClientGone => Attempt::ClientGone,
                StreamOutcome::Resumed => Attempt::Resumed,
            };
            self.count_attempt(replica, kind);
        }
        let whole = matches!(outcome, StreamOutcome::Complete | StreamOutcome::Resumed);
        if !whole && self.error.is_none() {
            self.error = Some(match outcome {
                StreamOutcome::ErrorEvent => "stream_error_event",
                StreamOutcome::Cut => "stream_cut",
                _ => "client_gone",
            });
        }
    }

    fn finish(&mut self, completed: bool) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.attempts_exhausted();
        if let Some(replica) = self.committed.take() {
            self.count_attempt(replica, Attempt::Ok);
        }
        let elapsed = self.start.elapsed();
        let class = super::class(self.status);
        if let Some(h) = &self.handles {
            match self.answered_by.and_then(|i| h.replicas.get(i)) {
                Some(r) => {
                    r.requests[class].inc();
                }
                None => {
                    if let Some(g) = h.groups.get(self.group) {
                        g.requests[class].inc();
                    }
                }
            }
            if let Some(r) = self.route() {
                r.duration.observe(elapsed.as_secs_f64());
            }
        }
        let replica = self
            .answered_by
            .or(self.replica)
            .and_then(|i| Some(&self.snap.as_ref()?.table.entries().get(i)?.replica));
        if let (Some(r), Some(h)) = (replica, &self.handles)
            && self.answered_by.is_some()
            && let Some(g) = h.groups.get(self.group)
            && g.name != r.model
            && let Some((_, c)) = g.fallbacks.iter().find(|(n, _)| *n == r.model)
        {
            c.inc();
        }
        if let Some(access) = &self.access {
            let model = self
                .handles
                .as_ref()
                .and_then(|h| h.groups.get(self.group))
                .map_or("", |g| g.name.as_str());
            let trace_id = self.trace.as_ref().map(|t| t.trace_id());
            let (tenant, key) = self
                .caller
                .as_ref()
                .and_then(|(t, k)| {
                    let t = self.snap.as_ref()?.config.tenants.get(*t)?;
                    let key = match k {
                        CallerKey::Config(k) => t.keys.get(*k)?.id.as_str(),
                        CallerKey::Runtime(id) => id,
                    };
                    Some((t.name.as_str(), key))
                })
                .unwrap_or(("", ""));
            tracing::info!(
                target: "switchyard::access",
                request_id = access.1.to_str().unwrap_or("-"),
                method = %self.method,
                path = access.0.path(),
                model,
                version = replica.map_or("", |r| r.version.as_str()),
                replica = replica.map_or("", |r| r.id.as_str()),
                cloud = replica.map_or("", |r| r.cloud.as_str()),
                tenant,
                key_id = key,
                status = self.status,
                attempts = self.attempts,
                duration_ms = elapsed.as_secs_f64() * 1e3,
                ttft_ms = self.ttft.map(|d| d.as_secs_f64() * 1e3),
                error = self.error,
                outcome = self.outcome.map_or("", StreamOutcome::label),
                completed,
                trace_id = trace_id.as_ref().map(tracing::field::display),
            );
        }
        if let Some(t) = self.trace.take() {
            let outcome = self.outcome.map_or("", StreamOutcome::label);
            t.finish(
                self.status,
                self.attempts,
                replica,
                self.error,
                completed,
                outcome,
            );
        }
    }
}

impl std::fmt::Debug for Obs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Obs")
            .field("request_id", &self.access.as_ref().map(|(_, id)| id))
            .field("attempts", &self.attempts)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Drop for Obs {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// Which key a tenant's request came with.
#[derive(Debug)]
enum CallerKey {
    /// An index into the tenant's `keys` in the config.
    Config(usize),
    /// The id of a key created at run time (`/admin/keys`).
    Runtime(Box<str>),
}
