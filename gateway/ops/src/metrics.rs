//! Prometheus metrics (`GET /metrics` on the admin listener, OpenMetrics
//! text), with `prometheus-client`.
//!
//! Two kinds of families:
//! - **Counted on the request path** (this file's [`Metrics`]): requests,
//!   durations, time to first token, attempts, retries, queue waits, sheds,
//!   reloads, the gateway's own overhead. The request path never builds a
//!   label set: [`handles`] resolves every series once per config
//!   generation into plain `Vec`s indexed like the replica table, and a
//!   request only bumps atomics (or locks a histogram's mutex).
//! - **Read at scrape time** ([`scrape`]): per-replica gauges (in-flight,
//!   utilisation, health, ejections, EWMA latency), version weights, queue
//!   depths, the config generation and hash, all straight from the current
//!   snapshot, so a replica a reload removed is gone from the next scrape.
//!
//! Label values are only ever configured names (model group, version,
//! cloud, replica) or fixed words: a model the config does not know is
//! counted as `_unknown`, a request that named none as `""`.
//!
//! # Layout
//! - [`handles`]: per-generation series handles, stale series removal.
//! - [`observe`]: one request's record ([`Obs`]): metrics, access log and
//!   trace spans, finished when the response body ends.

//! - [`scrape`]: the scrape-time collector.

mod global_limits;
mod handles;
mod observe;
mod scrape;
mod tenants;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use switchyard_proxy::Snapshot;
use switchyard_proxy::observe::ResumeAttempt;

use switchyard_control::Controller;
use switchyard_control::rollout::Rollouts;
use switchyard_fleet::rollouts::figures::Counters;
use switchyard_proxy::Proxy;

use crate::costs::Costs;
pub(crate) use handles::Handles;
pub use observe::Obs;
pub use switchyard_proxy::observe::Shed;

/// Status classes, the values of the `status_class` label (a final
/// answer is never 1xx).
pub(crate) const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

/// Index into [`CLASSES`] of `status`.
pub(crate) fn class(status: u16) -> usize {
    usize::from((status / 100).clamp(2, 5)) - 2
}

/// Values of `switchyard_upstream_attempts_total{result}`; see [`Attempt`].
pub(crate) const RESULTS: [&str; 12] = [
    "ok",
    "retried",
    "failed_over",
    "timeout",
    "error",
    "broken",
    "client_gone",
    "resumed",
    "resume_ok",
    "resume_failed",
    "resume_broken",
    "resume_client_gone",
];

/// What became of one upstream attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Its answer went to the client, whole, and was not a replica-side
    /// failure (counted when the body ends).
    Ok = 0,
    /// It failed retryably and the next attempt went to another replica of
    /// the same model group and version.
    Retried = 1,
    /// It failed retryably and the next attempt went to another version or
    /// a fallback group.
    FailedOver = 2,
    /// The last attempt: no response headers within the attempt deadline.
    Timeout = 3,
    /// The last attempt failed any other way (connect, reset, 429/5xx), or
    /// failed in a way that is never retried.
    Error = 4,
    /// Its answer was passed on, then the replica broke it off (the stream
    /// ended with an error event, or the body was cut).
    Broken = 5,
    /// Its answer was being passed on when the client went away.
    ClientGone = 6,
    /// Its answer was passed on, the replica broke it off, and another
    /// replica finished it (mid-stream resume).
    Resumed = 7,
    /// A mid-stream resume's continuation attempt finished the answer.
    ResumeOk = 8,
    /// A continuation attempt that never became the rest of the answer.
    ResumeFailed = 9,
    /// A continuation attempt whose stream broke off too.
    ResumeBroken = 10,
    /// A continuation attempt streaming when the client went away.
    ResumeClientGone = 11,
}

/// Values of `switchyard_retries_total{reason}`.
pub(crate) const REASONS: [&str; 5] = ["status_429", "status_5xx", "connect", "reset", "timeout"];

/// Values of `switchyard_shed_total{reason}`.
pub(crate) const SHED: [&str; 3] = ["queue_full", "queue_timeout", "no_queue"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    model: String,
    version: String,
    cloud: String,
    replica: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    model: String,
    version: String,
    cloud: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AttemptLabels {
    model: String,
    version: String,
    cloud: String,
    replica: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GroupLabels {
    model: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FallbackLabels {
    model: String,
    fallback: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct QueueLabels {
    model: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every family counted on the request path. Read through [`Handles`].
#[derive(Debug)]
pub(crate) struct Families {
    requests: Family<RequestLabels, Counter>,
    duration: Histograms<RouteLabels>,
    ttft: Histograms<RouteLabels>,
    inter_token: Histograms<RouteLabels>,
    attempts: Family<AttemptLabels, Counter>,
    retries: Family<GroupLabels, Counter>,
    budget_exhausted: Counter,
    fallbacks: Family<FallbackLabels, Counter>,
    queue_wait: Histograms<QueueLabels>,
    shed: Family<GroupLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    overhead: Histogram,
}

fn duration_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    ])
}

fn ttft_buckets() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

fn gap_buckets() -> Histogram {
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0])
}

fn wait_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

fn overhead_buckets() -> Histogram {
    Histogram::new([
        0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5,
        0.005, 0.01,
    ])
}

/// The gateway's metric families and the per-generation handle cache.
/// One per [`Gateway`]; shared by every request and config generation.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    fam: Families,
    cache: ArcSwapOption<Handles>,
    rebuild: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let fam = Families {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_buckets),
            ttft: Family::new_with_constructor(ttft_buckets),
            inter_token: Family::new_with_constructor(gap_buckets),
            attempts: Family::default(),
            retries: Family::default(),
            budget_exhausted: Counter::default(),
            fallbacks: Family::default(),
            queue_wait: Family::new_with_constructor(wait_buckets),
            shed: Family::default(),
            reloads: Family::default(),
            overhead: overhead_buckets(),
        };
        let mut r = Registry::with_prefix("switchyard");
        r.register(
            "requests",
            "Requests answered, by model group, version, cloud and replica that answered (empty when none did) and status class",
            fam.requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Request start to the last byte of the response (streams: the end of the stream)",
            Unit::Seconds,
            fam.duration.clone(),
        );
        r.register_with_unit(
            "time_to_first_token",
            "Streaming responses: request start to the first event sent to the client",
            Unit::Seconds,
            fam.ttft.clone(),
        );
        r.register_with_unit(
            "inter_token",
            "Streaming responses: gap between consecutive writes to the client",
            Unit::Seconds,
            fam.inter_token.clone(),
        );
        r.register(
            "upstream_attempts",
            "Upstream attempts by result: ok, retried (same version), failed_over (other version or fallback group), timeout, error, broken, client_gone, resumed (broken mid-stream, finished by another replica); a mid-stream resume's own attempts: resume_ok, resume_failed, resume_broken, resume_client_gone",
            fam.attempts.clone(),
        );
        r.register(
            "retries",
            "Attempts retried on another replica, by model group and reason",
            fam.retries.clone(),
        );
        r.register(
            "retry_budget_exhausted",
            "Retries not made because the gateway-wide retry budget was spent",
            fam.budget_exhausted.clone(),
        );
        r.register(
            "fallbacks",
            "Requests answered by a fallback group instead of the group they named",
            fam.fallbacks.clone(),
        );
        r.register_with_unit(
            "queue_wait",
            "Time spent in a group's wait queue, by outcome (admitted or shed)",
            Unit::Seconds,
            fam.queue_wait.clone(),
        );
        r.register(
            "shed",
            "Requests refused with 429 because every replica was full, by reason",
            fam.shed.clone(),
        );
        r.register(
            "config_reloads",
            "Config reloads by result (ok: applied, error: refused)",
            fam.reloads.clone(),
        );
        r.register_with_unit(
            "gateway_overhead",
            "Time spent in the gateway excluding upstream and queue waits: body read to first upstream send, plus answering headers to the response leaving the handler",
            Unit::Seconds,
            fam.overhead.clone(),
        );
        for result in ["ok", "error"] {
            let _ = fam.reloads.get_or_create_owned(&ResultLabels { result });
        }
        Self {
            registry: r,
            fam,
            cache: ArcSwapOption::empty(),
            rebuild: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// Brings the reload counters up to the controller's `(applied,
    /// refused)` counts; called at scrape, the only writer of these series.
    fn sync_reloads(&self, (applied, refused): (u64, u64)) {
        for (result, count) in [("ok", applied), ("error", refused)] {
            let c = self.fam.reloads.get_or_create(&ResultLabels { result });
            c.inc_by(count.saturating_sub(c.get()));
        }
    }

    /// Counts a retry the budget refused.
    pub(crate) fn budget_exhausted(&self) {
        self.fam.budget_exhausted.inc();
    }

    /// Counts a mid-stream resume's continuation attempt on replica
    /// `index` of `snap` (its first attempt is counted by the request).
    pub(crate) fn resume_attempt(&self, snap: &Snapshot, index: usize, end: ResumeAttempt) {
        let kind = match end {
            ResumeAttempt::Complete => Attempt::ResumeOk,
            ResumeAttempt::Failed => Attempt::ResumeFailed,
            ResumeAttempt::Broken => Attempt::ResumeBroken,
            ResumeAttempt::ClientGone => Attempt::ResumeClientGone,
        };
        if let Some(r) = self.handles(snap).replicas.get(index) {
            r.attempts[kind as usize].inc();
        }
    }

    /// The series handles for `snap`'s generation. Built once per
    /// generation (the first request or scrape that sees it pays); a newer
    /// generation replaces the cache and drops the series of replicas and
    /// groups it no longer has.
    pub(crate) fn handles(&self, snap: &Snapshot) -> Arc<Handles> {
        if let Some(h) = self.cache.load().as_ref()
            && h.generation == snap.generation
        {
            return Arc::clone(h);
        }
        let _one = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.cache.load_full();
        match &current {
            Some(h) if h.generation == snap.generation => return Arc::clone(h),
            // A request that loaded its snapshot just before a reload:
            // resolve its own handles without touching the cache.
            Some(h) if h.generation > snap.generation => {
                return Arc::new(Handles::build(&self.fam, snap));
            }
            _ => {}
        }
        let next = Arc::new(Handles::build(&self.fam, snap));
        if let Some(old) = current {
            old.remove_stale(&self.fam, &next);
        }
        self.cache.store(Some(Arc::clone(&next)));
        next
    }
}

/// What each request's [`Obs`] records into: the metric families, and the
/// canary figures the rollout controller judges on.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Prometheus families.
    pub metrics: Metrics,
    /// Rollout figures (shared with the controller).
    pub rollouts: Arc<Rollouts>,
    /// The same attempts counted for the fleet's rollout leader, published
    /// by `switchyard_fleet::rollouts::publish` in etcd mode; counts
    /// nothing until that tracks a group.
    pub fleet_figures: Arc<Counters>,
}

impl Recorder {
    /// A recorder feeding `rollouts`.
    pub fn new(rollouts: Arc<Rollouts>) -> Self {
        Self {
            metrics: Metrics::default(),
            rollouts,
            fleet_figures: Arc::default(),
        }
    }
}

/// Renders every family in the OpenMetrics text format: the counted
/// families, then the scrape-time ones from the current snapshot.
pub fn render(
    proxy: &Proxy,
    control: &Controller,
    recorder: &Recorder,
    costs: &Costs,
    fleet: Option<&switchyard_fleet::etcd::InstanceStatus>,
) -> String {
    let snap = proxy.snapshot();
    let metrics = &recorder.metrics;
    // Brings the cache (and so the stale-series cleanup) up to date even
    // when no request has arrived since the last reload.
    let _ = metrics.handles(&snap);
    metrics.sync_reloads(control.reload_counts());
    let mut out = String::with_capacity(16 << 10);
    let live = scrape::registry(proxy, control, costs, snap);
    let encoded = prometheus_client::encoding::text::encode_registry(&mut out, &metrics.registry)
        .and_then(|()| prometheus_client::encoding::text::encode_registry(&mut out, &live))
        .and_then(|()| match fleet {
            Some(f) => {
                prometheus_client::encoding::text::encode_registry(&mut out, &fleet_registry(f))
            }
            None => Ok(()),
        })
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut out));
    if let Err(e) = encoded {
        tracing::warn!(error = %e, "metrics encoding failed");
    }
    out
}

/// The fleet's gauges (etcd mode only).
fn fleet_registry(status: &switchyard_fleet::etcd::InstanceStatus) -> Registry {
    use prometheus_client::metrics::gauge::Gauge;
    let mut r = Registry::with_prefix("switchyard");
    let degraded = Gauge::<i64>::default();
    degraded.set(i64::from(status.degraded));
    r.register(
        "fleet_degraded",
        "1 while this instance has lost etcd and serves its last good state",
        degraded,
    );
    let revision = Gauge::<i64>::default();
    revision.set(status.revision);
    r.register(
        "fleet_revision",
        "The etcd revision up to which this instance applied every change",
        revision,
    );
    r
}
