//! Health of one replica.
//!
//! - Passive (outlier detection): consecutive failures eject it for a
//!   while; when the ejection ends, exactly one request probes it
//!   (half-open); success brings it back, failure ejects it again, longer.
//! - Active: the gateway's probe task reports each health probe with
//!   [`Health::on_probe`]; `fall` failures in a row mark it down, `rise`
//!   successes bring it back. Down only takes it out of rotation while no
//!   request has succeeded recently: a replica whose health endpoint is
//!   broken but which serves traffic fine is not flapped out.
//! - Slow start: after it comes back (or is added by a reload) its share
//!   ramps up over the group's `slow_start` window ([`Health::ramp`]).
//!
//! Time is passed in as milliseconds on [`clock`]'s monotonic scale, so the
//! state machine is deterministic under test.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

/// Consecutive failures that eject a replica.
pub const EJECT_AFTER: u32 = 5;
/// First ejection length; the n-th ejection in a row lasts n times this.
pub const BASE_EJECTION_MS: u64 = 5_000;
/// Longest ejection, so a recovered replica is always retried within this.
pub const MAX_EJECTION_MS: u64 = 30_000;

/// Share of traffic a replica gets at the very start of a slow start.
pub const MIN_RAMP: f64 = 0.1;

/// Milliseconds since the first call, monotonic. The only clock health uses.
pub fn clock() -> u64 {
    clock_at(Instant::now())
}

/// [`clock`] at `now`, for a caller that has just read the time anyway.
pub fn clock_at(now: Instant) -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    now.saturating_duration_since(*START.get_or_init(Instant::now))
        .as_millis() as u64
        + 1
}

/// Why a replica was last ejected, for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EjectionReason {
    /// `EJECT_AFTER` failures in a row.
    ConsecutiveFailures,
    /// The half-open probe after an ejection failed.
    FailedProbe,
}

/// What routing may do with a replica right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum HealthState {
    /// Takes traffic.
    Healthy,
    /// Takes none until `until_ms` (clock scale).
    Ejected {
        /// When the ejection (or `Retry-After` cool-down) ends.
        until_ms: u64,
    },
    /// The ejection ended; one probe request decides.
    Probing,
    /// Active health checks failed `fall` times in a row and no request
    /// has succeeded recently; takes no traffic until `rise` good probes.
    Down,
}

/// Lock-free health record of one replica.
#[derive(Debug, Default)]
pub struct Health {
    consecutive_failures: AtomicU32,
    /// Ejections in a row without a success in between.
    streak: AtomicU32,
    /// Total ejections ever, for the admin view and metrics.
    ejections: AtomicU64,
    until_ms: AtomicU64,
    /// Set while the single half-open probe is in flight.
    probe_taken: AtomicBool,
    /// Whether the current block came from an ejection (needs a probe) or
    /// only from a `Retry-After` cool-down (does not).
    needs_probe: AtomicBool,
    /// 0 never ejected, 1 consecutive failures, 2 failed probe.
    last_reason: std::sync::atomic::AtomicU8,
    /// When a request last succeeded (clock ms; 0 never).
    last_success_ms: AtomicU64,
    /// Active checks: marked down by `fall` failed probes.
    active_down: AtomicBool,
    /// Active checks: good / failed probes in a row.
    probe_ok: AtomicU32,
    probe_failed: AtomicU32,
    /// Active checks have reported at least once.
    probed: AtomicBool,
    /// How recent a request success must be to overrule failing probes.
    traffic_grace_ms: AtomicU64,
    /// Start of the current slow start (clock ms; 0: not warming).
    warm_since_ms: AtomicU64,
    /// Added by a reload to a group with active checks and not yet seen
    /// healthy by a probe: the readiness gate. Down, and left out of the
    /// panic-mode count (a rollout adding a fleet of unready replicas must
    /// not push a group into panic and spray traffic onto them).
    unready: AtomicBool,
}

/// Active health check results of one replica, for the admin view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ActiveView {
    /// `fall` probes failed in a row and no `rise` since.
    pub down: bool,
    /// Good probes in a row.
    pub consecutive_ok: u32,
    /// Failed probes in a row.
    pub consecutive_failed: u32,
}

/// Whether an admitted request is the half-open probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// An ordinary request.
    Normal,
    /// The one request allowed through after an ejection.
    Probe,
}

impl Health {
    /// The state at `now`.
    pub fn state(&self, now: u64) -> HealthState {
        let until = self.until_ms.load(Ordering::Acquire);
        if now < until {
            HealthState::Ejected { until_ms: until }
        } else if self.needs_probe.load(Ordering::Acquire) {
            HealthState::Probing
        } else if self.active_down.load(Ordering::Acquire) && !self.serving(now) {
            HealthState::Down
        } else {
            HealthState::Healthy
        }
    }

    /// A request succeeded within the traffic grace window.
    fn serving(&self, now: u64) -> bool {
        let last = self.last_success_ms.load(Ordering::Relaxed);
        last != 0 && now.saturating_sub(last) <= self.traffic_grace_ms.load(Ordering::Relaxed)
    }

    /// Records one active health probe at `now`. `grace_ms`: how recent a
    /// request success must be to keep the replica serving despite failed
    /// probes. Returns `Some(true)` when this probe brought the replica
    /// back up, `Some(false)` when it took it down.
    pub fn on_probe(
        &self,
        ok: bool,
        now: u64,
        rise: u32,
        fall: u32,
        grace_ms: u64,
    ) -> Option<bool> {
        self.traffic_grace_ms.store(grace_ms, Ordering::Relaxed);
        self.probed.store(true, Ordering::Relaxed);
        if ok {
            self.probe_failed.store(0, Ordering::Relaxed);
            let n = self.probe_ok.fetch_add(1, Ordering::AcqRel) + 1;
            if n >= rise && self.active_down.swap(false, Ordering::AcqRel) {
                self.unready.store(false, Ordering::Release);
                self.start_warming(now);
                return Some(true);
            }
        } else {
            self.probe_ok.store(0, Ordering::Relaxed);
            let n = self.probe_failed.fetch_add(1, Ordering::AcqRel) + 1;
            if n >= fall && !self.active_down.swap(true, Ordering::AcqRel) {
                return Some(false);
            }
        }
        None
    }

    /// Holds a replica out of traffic until active checks see it healthy
    /// (`rise` good probes): the readiness gate for replicas a reload adds.
    pub fn await_first_probe(&self) {
        self.unready.store(true, Ordering::Release);
        self.active_down.store(true, Ordering::Release);
    }

    /// Waiting for its first healthy probe ([`Health::await_first_probe`]).
    pub fn is_unready(&self) -> bool {
        self.unready.load(Ordering::Acquire)
    }

    /// Active check results, once any probe has reported.
    pub fn active(&self) -> Option<ActiveView> {
        self.probed.load(Ordering::Relaxed).then(|| ActiveView {
            down: self.active_down.load(Ordering::Acquire),
            consecutive_ok: self.probe_ok.load(Ordering::Relaxed),
            consecutive_failed: self.probe_failed.load(Ordering::Relaxed),
        })
    }

    /// Begins a slow start at `now` (recovered, or added by a reload).
    pub fn start_warming(&self, now: u64) {
        self.warm_since_ms.store(now.max(1), Ordering::Release);
    }

    /// When the current slow start began, if one is running.
    pub fn warming_since(&self) -> Option<u64> {
        match self.warm_since_ms.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    /// The share of its full traffic and concurrency this replica may take
    /// at `now` within a slow start of `window_ms`: from 10% right after it
    /// came back, linearly to 100% at the end of the window. 1.0 when no
    /// slow start runs.
    pub fn ramp(&self, now: u64, window_ms: u64) -> f64 {
        let since = self.warm_since_ms.load(Ordering::Relaxed);
        if since == 0 || window_ms == 0 {
            return 1.0;
        }
        let elapsed = now.saturating_sub(since);
        if elapsed >= window_ms {
            // Over: later reads take the fast path. A racing restart is
            // not lost: it stores a newer time we do not compare against.
            let _ =
                self.warm_since_ms
                    .compare_exchange(since, 0, Ordering::AcqRel, Ordering::Relaxed);
            return 1.0;
        }
        (elapsed as f64 / window_ms as f64).max(MIN_RAMP)
    }

    /// Claims permission to send one request at `now`: always when healthy,
    /// never while ejected, and once (the probe) when the ejection is over.
    pub fn admit(&self, now: u64) -> Option<Admission> {
        match self.state(now) {
            HealthState::Healthy => Some(Admission::Normal),
            HealthState::Ejected { .. } | HealthState::Down => None,
            HealthState::Probing => self
                .probe_taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .ok()
                .map(|_| Admission::Probe),
        }
    }

    /// Gives back a probe that was never sent (no free slot, client gone).
    pub fn release_probe(&self) {
        self.probe_taken.store(false, Ordering::Release);
    }

    /// The replica answered well at `now`: forget past failures and
    /// ejections; a replica coming back from an ejection starts slow.
    pub fn on_success(&self, now: u64) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.last_success_ms.store(now, Ordering::Relaxed);
        if self.needs_probe.swap(false, Ordering::AcqRel) {
            self.streak.store(0, Ordering::Relaxed);
            self.start_warming(now);
        }
        self.probe_taken.store(false, Ordering::Release);
    }

    /// The replica failed (connect error, timeout, 5xx, broken body). A
    /// failed probe, or the `EJECT_AFTER`-th failure in a row, ejects it.
    /// Returns whether this failure ejected the replica.
    pub fn on_failure(&self, now: u64, probe: bool) -> bool {
        let n = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if probe || n >= EJECT_AFTER {
            let reason = if probe { 2 } else { 1 };
            self.last_reason.store(reason, Ordering::Relaxed);
            self.eject(now);
            true
        } else {
            false
        }
    }

    fn eject(&self, now: u64) {
        let streak = u64::from(self.streak.fetch_add(1, Ordering::AcqRel) + 1);
        let length = (BASE_EJECTION_MS * streak).min(MAX_EJECTION_MS);
        // Up to 10% jitter so a fleet ejected together does not return together.
        let jitter = (now ^ (streak << 17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) % (length / 10 + 1);
        self.block_until(now + length - jitter);
        self.needs_probe.store(true, Ordering::Release);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.probe_taken.store(false, Ordering::Release);
        self.ejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes no traffic until `until` (a `Retry-After` from a 429/503). Never
    /// shortens an existing block, and needs no probe afterwards.
    pub fn cool_until(&self, until: u64) {
        self.block_until(until);
    }

    fn block_until(&self, until: u64) {
        self.until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// Ejections ever.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// Why the replica was last ejected (kept after it recovers).
    pub fn last_ejection_reason(&self) -> Option<EjectionReason> {
        match self.last_reason.load(Ordering::Relaxed) {
            1 => Some(EjectionReason::ConsecutiveFailures),
            2 => Some(EjectionReason::FailedProbe),
            _ => None,
        }
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
