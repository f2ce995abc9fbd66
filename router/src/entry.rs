//! One replica as routing sees it: its validated config, its live stats, and
//! the few derived numbers every policy and admission read (capacity during
//! slow start, whether it may be routed to, where it runs).
//!
//! Its own module, below both the table and the policies, so that policies
//! can read replicas without depending on the table that holds them.

use std::sync::Arc;

use switchyard_config::Replica;

use crate::health::HealthState;
use crate::stats::ReplicaStats;

/// One replica: its validated config plus its live stats.
#[derive(Debug)]
pub struct Entry {
    /// What the config says about it.
    pub replica: Replica,
    /// Live numbers, shared across config generations.
    pub stats: Arc<ReplicaStats>,
    /// Hash of the replica id: its rendezvous-hashing identity under the
    /// `affinity` policy (the id, not the index, so a reload that reorders
    /// replicas does not move sessions).
    pub(crate) seed: u64,
    /// Its group's slow-start window, copied here so admission needs no
    /// group lookup.
    pub(crate) slow_start_ms: u64,
}

impl Entry {
    /// Concurrency this replica may take at `now`: `max_concurrency`, cut
    /// down during slow start (never below one slot). A hard cap: `admit`
    /// never takes a slot above it.
    pub fn capacity(&self, now: u64) -> u32 {
        let max = self.replica.max_concurrency;
        if self.slow_start_ms == 0 {
            return max;
        }
        let ramp = self.stats.health.ramp(now, self.slow_start_ms);
        if ramp >= 1.0 {
            max
        } else {
            ((f64::from(max) * ramp).ceil() as u32).clamp(1, max)
        }
    }

    /// Share of its traffic this replica may take at `now` (slow start).
    pub(crate) fn ramp(&self, now: u64) -> f64 {
        if self.slow_start_ms == 0 {
            1.0
        } else {
            self.stats.health.ramp(now, self.slow_start_ms)
        }
    }

    /// Whether routing may send it a request at `now` (not counting panic mode).
    pub(crate) fn routable(&self, now: u64) -> bool {
        matches!(
            self.stats.health.state(now),
            HealthState::Healthy | HealthState::Probing
        )
    }

    /// In-flight over capacity, in millionths (integer, so ties are exact).
    /// Engine figures at `now` under the group's staleness bound, corrected
    /// for this gateway's sends and completions since the scrape; `None`:
    /// in-flight only.
    pub(crate) fn engine(&self, now: u64, stale_ms: u64) -> Option<crate::engine::EngineView> {
        self.stats
            .engine
            .view(self.stats.in_flight(), now, stale_ms)
    }

    pub(crate) fn utilisation(&self) -> u64 {
        u64::from(self.stats.in_flight()) * 1_000_000 / u64::from(self.replica.max_concurrency)
    }

    /// Whether this replica runs in one of `places` (cloud ids or provider
    /// names); an empty list allows everything.
    pub fn within<S: AsRef<str>>(&self, places: &[S]) -> bool {
        places.is_empty()
            || places.iter().any(|p| {
                let p = p.as_ref();
                p == self.replica.cloud || p == self.replica.provider.as_str()
            })
    }
}
