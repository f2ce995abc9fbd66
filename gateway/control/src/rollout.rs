//! Automatic canary rollouts: move a model group's traffic to a new version
//! step by step, judge each step by comparing the canary with the baseline
//! in the same window, and roll back on its own when a guard rail breaks.
//!
//! The controller is a loop over the serving config's `rollout` blocks. It
//! decides ([`Rollouts::decide`], on an injected `now`: tokio's clock, so
//! tests pause it) and the driver (`crate::driver`) applies the typed
//! [`Action`]s through `Controller::set_weights` /
//! `Controller::promote`, so every step is a new config generation with the
//! same guarantees as any reload (atomic, nothing in flight dropped). The
//! data plane feeds it one call per upstream attempt
//! ([`Rollouts::observe`]), which is a single relaxed load when no rollout
//! is running.
//!
//! Decisions, per step:
//! - both sides have `min_requests` in the window and the canary's error
//!   rate exceeds the baseline's by more than `max_error_rate_increase`, or
//!   its p95 latency is above `max_p95_ratio` × the baseline's: **roll
//!   back** (all traffic to the baseline), at once, without waiting for the
//!   step to end; likewise when outlier detection ejects a canary replica
//!   during the step (and no baseline one), or every canary replica is
//!   ejected: an ejected replica gets no traffic, so its error rate alone
//!   would never show it;
//! - the step's interval is over and the figures are within bounds:
//!   **advance** (the last step, or 100%, promotes the canary);
//! - the interval is over but a side lacks data: **extend** the step.
//!
//! An operator changing the group's weights by hand takes over: the
//! rollout stops (`overridden`) and the controller leaves the group alone
//! until the config declares a different rollout.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use switchyard_config::{Config, Rollout};
use switchyard_router::ReplicaTable;

use tokio::time::Instant;

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum Phase {
    /// Moving through its steps.
    Progressing,
    /// The canary was promoted to 100%.
    Completed,
    /// A guard rail broke; all traffic went back to the baseline.
    RolledBack {
        /// Which guard rail, with the figures.
        reason: String,
    },
    /// An operator changed the weights by hand; the controller let go.
    Overridden,
}

/// Every [`Phase`] name, for metrics that render each as 0 or 1.
pub const PHASES: [&str; 4] = ["progressing", "completed", "rolled_back", "overridden"];

impl Phase {
    /// The phase's name, as in `GET /admin/rollouts`.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Progressing => "progressing",
            Phase::Completed => "completed",
            Phase::RolledBack { .. } => "rolled_back",
            Phase::Overridden => "overridden",
        }
    }
}

/// A window's figures, as shown in decisions.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Figures {
    /// Attempts observed.
    pub requests: u64,
    /// Of which failed on the replica's side.
    pub errors: u64,
    /// `errors / requests` (0 when there are none).
    pub error_rate: f64,
    /// 95th percentile time to response headers (for streams: to the
    /// first event), ms.
    pub p95_ms: Option<f64>,
}

/// One decision and the figures it was based on.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Wall-clock time, ms since the Unix epoch.
    pub at_ms: u64,
    /// Step index the decision was taken in.
    pub step: usize,
    /// Canary percentage during that step.
    pub percent: u32,
    /// `start`, `advance`, `extend`, `complete`, `rollback`, `overridden`.
    pub action: &'static str,
    /// Why, in words.
    pub reason: String,
    /// Canary figures of the window.
    pub canary: Figures,
    /// Baseline figures of the window.
    pub baseline: Figures,
}

/// The state of one group's rollout, as `GET /admin/rollouts` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    /// Model group.
    pub group: String,
    /// The declared rollout.
    pub spec: Rollout,
    /// Where it stands.
    #[serde(flatten)]
    pub phase: Phase,
    /// Current step index into `spec.steps`.
    pub step: usize,
    /// Canary percentage now.
    pub percent: u32,
    /// Time spent in the current step, ms.
    pub step_elapsed_ms: u64,
    /// Figures of the current window.
    pub canary: Figures,
    /// Figures of the current window.
    pub baseline: Figures,
    /// Every decision so far, oldest first.
    pub history: Vec<Decision>,
}

#[derive(Debug)]
struct Window {
    requests: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

impl Window {
    fn new() -> Self {
        Self {
            requests: 0,
            errors: 0,
            // 1 µs .. 1 h, 2 significant figures: plenty for a p95 ratio.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 2)
                .unwrap_or_else(|_| Histogram::new(2).unwrap_or_else(|_| unreachable!())),
        }
    }

    fn figures(&self) -> Figures {
        Figures {
            requests: self.requests,
            errors: self.errors,
            error_rate: if self.requests == 0 {
                0.0
            } else {
                self.errors as f64 / self.requests as f64
            },
            p95_ms: (!self.latency_us.is_empty())
                .then(|| self.latency_us.value_at_quantile(0.95) as f64 / 1e3),
        }
    }
}

/// One group's two windows, fed on the request path under their own lock,
/// so attempts of different groups never wait for each other or for a
/// decision about another group.
#[derive(Debug)]
struct Windows {
    /// Whether the current step's weights serve (figures count only then).
    open: bool,
    canary_version: String,
    baseline_version: String,
    canary: Window,
    baseline: Window,
}

impl Windows {
    fn new(spec: &Rollout) -> Self {
        Self {
            open: false,
            canary_version: spec.canary.clone(),
            baseline_version: spec.baseline.clone(),
            canary: Window::new(),
            baseline: Window::new(),
        }
    }

    fn record(&mut self, version: &str, ok: bool, latency: Duration) {
        if !self.open {
            return;
        }
        let w = if version == self.canary_version {
            &mut self.canary
        } else if version == self.baseline_version {
            &mut self.baseline
        } else {
            return;
        };
        w.requests += 1;
        w.errors += u64::from(!ok);
        let _ = w
            .latency_us
            .record((latency.as_micros() as u64).clamp(1, 3_600_000_000));
    }
}

type Feed = Arc<Mutex<Windows>>;

#[derive(Debug)]
struct State {
    spec: Rollout,
    phase: Phase,
    step: usize,
    step_started: Instant,
    /// Whether the current step's weights are serving yet.
    applied: bool,
    /// The weights the controller last set; anything else means an operator
    /// took over.
    expected: BTreeMap<String, u32>,
    windows: Feed,
    history: Vec<Decision>,
    /// Passive ejections of (canary, baseline) replicas when the window
    /// started.
    ejections: (u64, u64),
}

/// Passive ejections so far of the group's (canary, baseline) replicas.
fn ejections(table: &ReplicaTable, group: &str, spec: &Rollout) -> (u64, u64) {
    let of = |version: &str| -> u64 {
        table
            .entries()
            .iter()
            .filter(|e| e.replica.model == group && e.replica.version == version)
            .map(|e| e.stats.health.ejections())
            .sum()
    };
    (of(&spec.canary), of(&spec.baseline))
}

/// Outlier detection ejected a canary replica during the window while the
/// baseline's were left alone: the canary is failing in a way its error
/// rate may not show yet (an ejected replica gets no traffic to count).
fn ejected_canary(
    table: &ReplicaTable,
    group: &str,
    spec: &Rollout,
    at_start: (u64, u64),
) -> Option<String> {
    let now = ejections(table, group, spec);
    if now.0 > at_start.0 && now.1 == at_start.1 {
        return Some(format!(
            "outlier detection ejected a canary replica {} time(s) in this step, none of the baseline's",
            now.0 - at_start.0
        ));
    }
    // Ejected before the step began, and still out: no traffic can prove it well.
    let clock = switchyard_router::clock();
    let mut canary = table
        .entries()
        .iter()
        .filter(|e| e.replica.model == group && e.replica.version == spec.canary)
        .peekable();
    let all_out = canary.peek().is_some()
        && canary.all(|e| {
            matches!(
                e.stats.health.state(clock),
                switchyard_router::HealthState::Ejected { .. }
            )
        });
    all_out.then(|| "every canary replica is ejected by outlier detection".to_owned())
}

impl State {
    fn new(spec: Rollout, now: Instant) -> Self {
        Self {
            windows: Arc::new(Mutex::new(Windows::new(&spec))),
            spec,
            phase: Phase::Progressing,
            step: 0,
            step_started: now,
            applied: false,
            expected: BTreeMap::new(),
            history: Vec::new(),
            ejections: (0, 0),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current windows' (canary, baseline) figures.
    fn figures(&self) -> (Figures, Figures) {
        let w = self.windows();
        (w.canary.figures(), w.baseline.figures())
    }

    /// Starts new windows (a new step); they stay closed until it serves.
    fn reset_windows(&self) {
        let mut w = self.windows();
        w.canary = Window::new();
        w.baseline = Window::new();
    }

    fn percent(&self) -> u32 {
        self.spec.steps.get(self.step).copied().unwrap_or(100)
    }

    fn weights(&self) -> BTreeMap<String, u32> {
        let p = self.percent();
        let mut w = BTreeMap::from([(self.spec.canary.clone(), p)]);
        if p < 100 {
            w.insert(self.spec.baseline.clone(), 100 - p);
        }
        w
    }

    fn decide(&mut self, action: &'static str, reason: String) {
        tracing::info!(
            canary = %self.spec.canary,
            step = self.step,
            action,
            "rollout: {reason}"
        );
        let (canary, baseline) = self.figures();
        self.history.push(Decision {
            at_ms: crate::events::wall_ms(),
            step: self.step,
            percent: self.percent(),
            action,
            reason,
            canary,
            baseline,
        });
    }

    fn next_step(&mut self, now: Instant) {
        self.step += 1;
        self.step_started = now;
        self.applied = false;
        self.reset_windows();
    }

    /// The guard rail the canary breaks, if any, once both sides have data.
    fn breach(&self) -> Option<String> {
        let (c, b) = self.figures();
        if c.requests < self.spec.min_requests || b.requests < self.spec.min_requests {
            return None;
        }
        if c.error_rate > b.error_rate + self.spec.max_error_rate_increase {
            return Some(format!(
                "canary error rate {:.1}% vs baseline {:.1}% (allowed: +{:.1} points)",
                c.error_rate * 100.0,
                b.error_rate * 100.0,
                self.spec.max_error_rate_increase * 100.0
            ));
        }
        if let (Some(cp), Some(bp)) = (c.p95_ms, b.p95_ms)
            && cp > bp * self.spec.max_p95_ratio
        {
            return Some(format!(
                "canary p95 {cp:.1} ms vs baseline {bp:.1} ms (allowed: {}x)",
                self.spec.max_p95_ratio
            ));
        }
        None
    }
}

/// What the controller must do after looking, done without its lock held.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Set the group's version weights.
    Weights(String, BTreeMap<String, u32>),
    /// Promote the group's version to 100 % and make it stable.
    Promote(String, String),
    /// Record an event: kind, subject, detail.
    Event(&'static str, String, String),
}

/// All rollouts of this gateway.
#[derive(Debug, Default)]
pub struct Rollouts {
    /// Fast path for [`Rollouts::observe`]: is any rollout progressing?
    active: AtomicBool,
    states: Mutex<HashMap<String, State>>,
    /// The windows of progressing rollouts by group, for `observe`: a
    /// lock-free load, then only that group's lock.
    feeds: ArcSwap<HashMap<String, Feed>>,
}

impl Rollouts {
    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any rollout is progressing: [`Rollouts::observe`] does
    /// nothing otherwise (a caller may skip reading the attempt's time).
    pub fn watching(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Records one upstream attempt of `group`'s `version`: whether the
    /// replica served it (`ok`; a client's 4xx counts as served) and its
    /// time to response headers.
    pub fn observe(&self, group: &str, version: &str, ok: bool, latency: Duration) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        if let Some(feed) = self.feeds.load().get(group) {
            feed.lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(version, ok, latency);
        }
    }

    /// Every rollout, for `GET /admin/rollouts`.
    pub fn view(&self) -> Vec<RolloutView> {
        let states = self.states();
        let mut out: Vec<RolloutView> = states
            .iter()
            .map(|(g, s)| {
                let (canary, baseline) = s.figures();
                RolloutView {
                    group: g.clone(),
                    spec: s.spec.clone(),
                    phase: s.phase.clone(),
                    step: s.step,
                    percent: s.percent(),
                    step_elapsed_ms: s.step_started.elapsed().as_millis() as u64,
                    canary,
                    baseline,
                    history: s.history.clone(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    /// One look at every rollout at `now`: starts new ones, judges running
    /// ones, and returns what must be done. Pure but for the figures it
    /// reads: nothing is applied here.
    pub fn decide(&self, config: &Config, table: &ReplicaTable, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut states = self.states();
        states.retain(|g, _| config.model(g).is_some_and(|m| m.rollout.is_some()));
        for m in &config.models {
            let Some(spec) = &m.rollout else { continue };
            let serving: BTreeMap<String, u32> = m
                .versions
                .iter()
                .filter(|v| v.weight > 0)
                .map(|v| (v.name.clone(), v.weight))
                .collect();
            let s = states.entry(m.name.clone()).or_insert_with(|| {
                let mut s = State::new(spec.clone(), now);
                s.decide(
                    "start",
                    format!("rolling out {} against {}", spec.canary, spec.baseline),
                );
                s
            });
            if &s.spec != spec {
                *s = State::new(spec.clone(), now);
                s.decide(
                    "start",
                    "the declared rollout changed; starting over".to_owned(),
                );
            }
            if s.phase != Phase::Progressing {
                continue;
            }
            let wanted = s.weights();
            if !s.applied {
                if serving == wanted {
                    // Our weights are serving: the step's window starts now.
                    s.applied = true;
                    s.expected = wanted;
                    s.step_started = now;
                    s.reset_windows();
                    actions.push(Action::Event(
                        "rollout_step",
                        m.name.clone(),
                        format!("{} at {}%", spec.canary, s.percent()),
                    ));
                } else if s.expected.is_empty() || serving == s.expected {
                    actions.push(Action::Weights(m.name.clone(), wanted.clone()));
                    s.expected = wanted;
                    // Ejections count from the moment the step is asked
                    // for: traffic reaches the canary before the window opens.
                    s.ejections = ejections(table, &m.name, spec);
                } else {
                    overridden(s, &m.name, &mut actions);
                }
                continue;
            }
            if serving != s.expected {
                overridden(s, &m.name, &mut actions);
                continue;
            }
            let breach = s
                .breach()
                .or_else(|| ejected_canary(table, &m.name, spec, s.ejections));
            if let Some(reason) = breach {
                s.decide("rollback", reason.clone());
                s.phase = Phase::RolledBack {
                    reason: reason.clone(),
                };
                let back = BTreeMap::from([(spec.baseline.clone(), 100)]);
                s.expected = back.clone();
                actions.push(Action::Weights(m.name.clone(), back));
                actions.push(Action::Event(
                    "rollback",
                    m.name.clone(),
                    format!("{} rolled back to {}: {reason}", spec.canary, spec.baseline),
                ));
                continue;
            }
            if now.saturating_duration_since(s.step_started) < spec.step_interval {
                continue;
            }
            let (c, b) = s.figures();
            if c.requests < spec.min_requests || b.requests < spec.min_requests {
                // Judge only on enough data; keep the step running. Logged
                // once per step, not every tick.
                if s.history
                    .last()
                    .is_none_or(|d| d.action != "extend" || d.step != s.step)
                {
                    s.decide(
                        "extend",
                        format!(
                            "waiting for {} requests per side (canary {}, baseline {})",
                            spec.min_requests, c.requests, b.requests
                        ),
                    );
                }
                continue;
            }
            let last = s.step + 1 >= spec.steps.len() || spec.steps[s.step + 1] >= 100;
            if last && spec.steps.last() == Some(&100) {
                s.decide("complete", "every step within bounds; promoting".to_owned());
                s.phase = Phase::Completed;
                s.step = spec.steps.len() - 1;
                s.expected = BTreeMap::from([(spec.canary.clone(), 100)]);
                actions.push(Action::Promote(m.name.clone(), spec.canary.clone()));
                actions.push(Action::Event(
                    "rollout_completed",
                    m.name.clone(),
                    format!("{} promoted to 100%", spec.canary),
                ));
            } else if last {
                // The declared steps stop short of 100%: hold the last one.
                if s.history.last().is_none_or(|d| d.action != "hold") {
                    s.decide("hold", "last declared step reached; holding".to_owned());
                }
            } else {
                s.decide("advance", "within bounds".to_owned());
                s.next_step(now);
                s.ejections = ejections(table, &m.name, spec);
                let next = s.weights();
                s.expected = next.clone();
                actions.push(Action::Weights(m.name.clone(), next));
            }
        }
        // Windows count only while their step's weights serve.
        let mut feeds = HashMap::new();
        for (g, s) in states.iter() {
            let open = s.phase == Phase::Progressing && s.applied;
            s.windows().open = open;
            if s.phase == Phase::Progressing {
                feeds.insert(g.clone(), Arc::clone(&s.windows));
            }
        }
        let active = !feeds.is_empty();
        self.feeds.store(Arc::new(feeds));
        self.active.store(active, Ordering::Relaxed);
        actions
    }
}

fn overridden(s: &mut State, group: &str, actions: &mut Vec<Action>) {
    s.decide(
        "overridden",
        "weights were changed by an operator; the rollout stops here".to_owned(),
    );
    s.phase = Phase::Overridden;
    actions.push(Action::Event(
        "rollout_overridden",
        group.to_owned(),
        "an operator changed the weights; automatic rollout stopped".to_owned(),
    ));
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
