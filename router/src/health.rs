//! Passive health (outlier detection) for one replica: consecutive failures
//! eject it for a while; when the ejection ends, exactly one request probes
//! it (half-open); success brings it back, failure ejects it again, longer.
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

/// Milliseconds since the first call, monotonic. The only clock health uses.
pub fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
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
        } else {
            HealthState::Healthy
        }
    }

    /// Claims permission to send one request at `now`: always when healthy,
    /// never while ejected, and once (the probe) when the ejection is over.
    pub fn admit(&self, now: u64) -> Option<Admission> {
        match self.state(now) {
            HealthState::Healthy => Some(Admission::Normal),
            HealthState::Ejected { .. } => None,
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

    /// The replica answered well: forget past failures and ejections.
    pub fn on_success(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        if self.needs_probe.swap(false, Ordering::AcqRel) {
            self.streak.store(0, Ordering::Relaxed);
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
mod tests {
    use super::*;

    fn fail(h: &Health, now: u64, times: u32) {
        for _ in 0..times {
            h.on_failure(now, false);
        }
    }

    #[test]
    fn consecutive_failures_eject_and_success_resets_the_count() {
        let h = Health::default();
        fail(&h, 100, EJECT_AFTER - 1);
        h.on_success();
        fail(&h, 100, EJECT_AFTER - 1);
        assert_eq!(h.state(100), HealthState::Healthy);
        assert!(h.on_failure(100, false));
        assert!(matches!(h.state(101), HealthState::Ejected { .. }));
        assert_eq!(h.admit(101), None);
        assert_eq!(h.ejections(), 1);
    }

    #[test]
    fn one_probe_after_the_ejection_decides() {
        let h = Health::default();
        fail(&h, 0, EJECT_AFTER);
        let after = MAX_EJECTION_MS + 1;
        assert_eq!(h.state(after), HealthState::Probing);
        assert_eq!(h.admit(after), Some(Admission::Probe));
        assert_eq!(h.admit(after), None, "only one probe at a time");
        h.on_success();
        assert_eq!(h.state(after), HealthState::Healthy);
        assert_eq!(h.admit(after), Some(Admission::Normal));
    }

    #[test]
    fn a_failed_probe_ejects_again_for_longer_and_never_shorter() {
        let h = Health::default();
        fail(&h, 0, EJECT_AFTER);
        let HealthState::Ejected { until_ms: first } = h.state(1) else {
            panic!()
        };
        let t = first + 1;
        assert_eq!(h.admit(t), Some(Admission::Probe));
        assert_eq!(
            h.last_ejection_reason(),
            Some(EjectionReason::ConsecutiveFailures)
        );
        assert!(h.on_failure(t, true));
        assert_eq!(h.last_ejection_reason(), Some(EjectionReason::FailedProbe));
        let HealthState::Ejected { until_ms: second } = h.state(t) else {
            panic!()
        };
        assert!(
            second - t > first,
            "second ejection is longer: {first} then {}",
            second - t
        );
        assert!(second - t <= MAX_EJECTION_MS);
        // A short cool-down cannot shorten it.
        h.cool_until(t + 10);
        assert_eq!(h.state(t), HealthState::Ejected { until_ms: second });
    }

    #[test]
    fn retry_after_cools_without_needing_a_probe() {
        let h = Health::default();
        h.cool_until(500);
        assert_eq!(h.state(499), HealthState::Ejected { until_ms: 500 });
        assert_eq!(h.state(500), HealthState::Healthy);
        assert_eq!(h.ejections(), 0);
    }

    #[test]
    fn an_unsent_probe_is_given_back() {
        let h = Health::default();
        fail(&h, 0, EJECT_AFTER);
        let t = MAX_EJECTION_MS + 1;
        assert_eq!(h.admit(t), Some(Admission::Probe));
        h.release_probe();
        assert_eq!(h.admit(t), Some(Admission::Probe));
    }
}
