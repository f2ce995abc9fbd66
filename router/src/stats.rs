//! Live per-replica numbers, kept outside the swapped config.
//!
//! A [`ReplicaStats`] is created once per replica id and survives config
//! reloads (the [`StatsRegistry`] hands the same `Arc` to every table built
//! while the replica exists), so in-flight counts stay exact across a swap:
//! a request admitted under the old table releases its slot on the same
//! counter the new table reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::health::{Admission, Health, clock, clock_at};

/// Weight of the newest sample in the latency EWMA.
const EWMA_ALPHA: f64 = 0.2;

/// How fast the load estimate's peak fades while samples keep coming
/// (Finagle's and tower's PeakEWMA shape): after a slow response the
/// replica looks slow for about this long, not for one sample.
const PEAK_DECAY_MS: f64 = 5_000.0;

/// How fast an estimate with no new samples loses its weight. A replica
/// that was slow once and then got no traffic would otherwise keep its
/// stale peak forever and never be picked again to prove it recovered.
pub const IDLE_DECAY_MS: f64 = 10_000.0;

/// Counters and gauges for one replica. All lock-free.
#[derive(Debug, Default)]
pub struct ReplicaStats {
    in_flight: AtomicU32,
    requests: AtomicU64,
    errors: AtomicU64,
    /// f64 bits of the EWMA of response latency in microseconds; 0 = no sample yet.
    ewma_latency_us: AtomicU64,
    /// f64 bits of the peak-sensitive EWMA (microseconds) that load
    /// balancing reads: jumps up to a slower sample at once, decays back
    /// over [`PEAK_DECAY_MS`]. 0 = no sample yet.
    peak_us: AtomicU64,
    /// [`clock`] time of the last latency sample.
    sampled_ms: AtomicU64,
    /// f64 bits of the EWMA of time to first event of streamed answers, in
    /// microseconds; 0 = no sample yet. What "late" means for this replica
    /// (the adaptive first-token deadline).
    ttft_us: AtomicU64,
    /// Passive health: ejection and half-open probing.
    pub health: Health,
    /// Active, draining (removed by a reload) or retired (drain window over);
    /// see `lifecycle.rs`.
    pub(crate) lifecycle: std::sync::atomic::AtomicU8,
    /// Cordoned by an operator: admission skips it, in-flight requests
    /// finish; kept across reloads (the stats follow the replica's id).
    pub(crate) cordoned: std::sync::atomic::AtomicBool,
    /// What its inference engine last reported (queue, KV cache).
    pub engine: crate::engine::EngineLoad,
    /// The prompt blocks this gateway sent it (its approximate prefix cache).
    pub prefix: crate::prefix::PrefixIndex,
    /// The LoRA adapters its engine last reported.
    pub lora: crate::lora::LoraLoad,
}

impl ReplicaStats {
    /// Takes one of `max` concurrency slots, or `None` when all are taken.
    ///
    /// A compare-and-swap, not load-then-add: two requests racing for the last
    /// slot cannot both win, so a replica never sees more than `max`.
    pub fn try_acquire(self: &Arc<Self>, max: u32) -> Option<InFlightGuard> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        Some(InFlightGuard {
            stats: Arc::clone(self),
            started: Instant::now(),
            finished: false,
            probe: false,
        })
    }

    /// Requests currently holding a slot.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Requests ever admitted to this replica.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that ended in an upstream error (connect, timeout, 5xx, cut body).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Smoothed latency of successful responses; `None` before the first one.
    pub fn ewma_latency(&self) -> Option<Duration> {
        let us = f64::from_bits(self.ewma_latency_us.load(Ordering::Relaxed));
        (us > 0.0).then(|| Duration::from_secs_f64(us / 1e6))
    }

    /// Smoothed time to the first event of its streamed answers; `None`
    /// before the first one.
    pub fn ttft(&self) -> Option<Duration> {
        let us = f64::from_bits(self.ttft_us.load(Ordering::Relaxed));
        (us > 0.0).then(|| Duration::from_secs_f64(us / 1e6))
    }

    /// Records one streamed answer's time to its first event.
    pub fn record_ttft(&self, sample: Duration) {
        let sample_us = (sample.as_secs_f64() * 1e6).max(1.0);
        let _ = self
            .ttft_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let old = f64::from_bits(bits);
                let new = if old == 0.0 {
                    sample_us
                } else {
                    old + EWMA_ALPHA * (sample_us - old)
                };
                Some(new.to_bits())
            });
    }

    /// The load-balancing latency estimate at `now`, in microseconds, with
    /// how much of it is still backed by recent samples (1.0 fresh, towards
    /// 0.0 after [`IDLE_DECAY_MS`] without one). `None` before any sample.
    pub fn peak_latency(&self, now: u64) -> Option<(f64, f64)> {
        let us = f64::from_bits(self.peak_us.load(Ordering::Relaxed));
        if us <= 0.0 {
            return None;
        }
        let age = now.saturating_sub(self.sampled_ms.load(Ordering::Relaxed)) as f64;
        Some((us, (-age / IDLE_DECAY_MS).exp()))
    }

    #[cfg(test)]
    fn record_latency(&self, sample: Duration) {
        self.record_latency_at(sample, clock());
    }

    pub(crate) fn record_latency_at(&self, sample: Duration, now: u64) {
        let sample_us = (sample.as_secs_f64() * 1e6).max(1.0);
        let since = now.saturating_sub(self.sampled_ms.swap(now, Ordering::Relaxed)) as f64;
        let keep = (-since / PEAK_DECAY_MS).exp();
        let _ = self
            .peak_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let old = f64::from_bits(bits);
                let new = if sample_us >= old {
                    sample_us
                } else {
                    old * keep + sample_us * (1.0 - keep)
                };
                Some(new.to_bits())
            });
        let _ = self
            .ewma_latency_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let old = f64::from_bits(bits);
                let new = if old == 0.0 {
                    sample_us
                } else {
                    old + EWMA_ALPHA * (sample_us - old)
                };
                Some(new.to_bits())
            });
    }
}

/// How a request that held a slot ended, as far as the replica's record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The replica answered in full (any status the client caused counts here).
    Success,
    /// The replica failed: connect error, timeout, 5xx, or a body cut short.
    Failure,
    /// The client went away first; says nothing about the replica.
    Cancelled,
}

/// Holds one concurrency slot of one replica until dropped.
///
/// The gateway attaches it to the *response body*, not the handler, so a
/// streaming response keeps its slot until the last byte is sent or the
/// client disconnects, whichever comes first.
#[derive(Debug)]
pub struct InFlightGuard {
    stats: Arc<ReplicaStats>,
    started: Instant,
    finished: bool,
    /// This request is the half-open probe after an ejection.
    probe: bool,
}

impl InFlightGuard {
    /// Records how the request ended and releases the slot.
    pub fn finish(mut self, outcome: Outcome) {
        self.record(outcome);
    }

    /// Records the outcome now but keeps the slot (used when headers arrive:
    /// latency to first byte is what the EWMA tracks).
    pub fn record(&mut self, outcome: Outcome) {
        if self.finished {
            return;
        }
        self.finished = true;
        match outcome {
            Outcome::Success => {
                // One clock read for both.
                let now = Instant::now();
                let ms = clock_at(now);
                self.stats
                    .record_latency_at(now.saturating_duration_since(self.started), ms);
                self.stats.health.on_success(ms);
            }
            Outcome::Failure => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.health.on_failure(clock(), self.probe);
            }
            Outcome::Cancelled => {
                if self.probe {
                    self.stats.health.release_probe();
                }
            }
        }
    }

    /// Marks this request as the half-open probe (see [`Health::admit`]).
    pub(crate) fn set_admission(&mut self, admission: Admission) {
        self.probe = admission == Admission::Probe;
    }

    /// Marks an already-recorded success as a failure after all (the body
    /// broke after good headers).
    pub fn fail_late(&mut self) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.stats.health.on_failure(clock(), self.probe);
        self.finished = true;
    }

    /// The replica's stats this slot belongs to.
    pub fn stats(&self) -> &Arc<ReplicaStats> {
        &self.stats
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if !self.finished && self.probe {
            self.stats.health.release_probe();
        }
        self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Replica id -> live stats, shared by every table built from every config.
#[derive(Debug, Default)]
pub struct StatsRegistry {
    by_id: DashMap<String, (String, Arc<ReplicaStats>)>,
    /// A table has been built: replicas first seen after this were added
    /// by a reload and start in slow start (the first fleet does not, or
    /// every start of the gateway would begin at a tenth of capacity).
    primed: std::sync::atomic::AtomicBool,
}

impl StatsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stats for replica `id` at `url`. The same id at the same URL gets
    /// the same counters it had; a changed URL is a different server and
    /// starts fresh.
    pub fn get(&self, id: &str, url: &str) -> Arc<ReplicaStats> {
        if let Some(e) = self.by_id.get(id)
            && e.0 == url
        {
            return Arc::clone(&e.1);
        }
        let fresh = Arc::new(ReplicaStats::default());
        if self.primed.load(Ordering::Acquire) {
            fresh.health.start_warming(clock());
        }
        self.by_id
            .insert(id.to_owned(), (url.to_owned(), Arc::clone(&fresh)));
        fresh
    }

    /// Marks the first table as built (see `primed`).
    pub(crate) fn prime(&self) {
        self.primed.store(true, Ordering::Release);
    }

    /// Forgets replicas that are no longer configured. Requests still holding
    /// their `Arc` finish normally.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.by_id.retain(|id, _| keep(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_released_on_drop() {
        let s = Arc::new(ReplicaStats::default());
        let a = s.try_acquire(2).unwrap();
        let b = s.try_acquire(2).unwrap();
        assert!(s.try_acquire(2).is_none());
        assert_eq!(s.in_flight(), 2);
        drop(a);
        assert_eq!(s.in_flight(), 1);
        b.finish(Outcome::Failure);
        assert_eq!((s.in_flight(), s.errors(), s.requests()), (0, 1, 2));
    }

    #[test]
    fn ttft_is_smoothed_per_replica() {
        let s = ReplicaStats::default();
        assert_eq!(s.ttft(), None);
        s.record_ttft(Duration::from_millis(20));
        assert_eq!(s.ttft(), Some(Duration::from_millis(20)));
        s.record_ttft(Duration::from_millis(120));
        let t = s.ttft().unwrap().as_secs_f64() * 1e3;
        assert!((t - 40.0).abs() < 0.01, "{t}");
    }

    #[test]
    fn ewma_moves_toward_samples() {
        let s = ReplicaStats::default();
        assert!(s.ewma_latency().is_none());
        s.record_latency(Duration::from_millis(100));
        s.record_latency(Duration::from_millis(200));
        let ms = s.ewma_latency().unwrap().as_secs_f64() * 1e3;
        assert!((119.0..121.0).contains(&ms), "{ms}");
    }

    #[test]
    fn peak_ewma_jumps_to_peaks_decays_slowly_and_fades_when_idle() {
        let s = ReplicaStats::default();
        assert!(s.peak_latency(0).is_none());
        s.record_latency_at(Duration::from_millis(10), 1_000);
        s.record_latency_at(Duration::from_millis(500), 1_010);
        let (us, fresh) = s.peak_latency(1_010).unwrap();
        assert_eq!(us, 500_000.0, "a slower sample is taken at once");
        assert!(fresh > 0.99);
        s.record_latency_at(Duration::from_millis(10), 1_020);
        let (us, _) = s.peak_latency(1_020).unwrap();
        assert!(
            us > 490_000.0,
            "the peak fades over seconds, not one sample: {us}"
        );
        s.record_latency_at(Duration::from_millis(10), 11_020);
        let (us, _) = s.peak_latency(11_020).unwrap();
        assert!(us < 100_000.0, "10 s later it has mostly decayed: {us}");
        let (_, fresh) = s.peak_latency(41_020).unwrap();
        assert!(
            fresh < 0.06,
            "30 s idle: the estimate barely counts: {fresh}"
        );
    }

    #[test]
    fn replicas_added_after_the_first_table_warm_up() {
        let r = StatsRegistry::new();
        assert!(r.get("a", "http://x").health.warming_since().is_none());
        r.prime();
        assert!(r.get("b", "http://x").health.warming_since().is_some());
        assert!(r.get("a", "http://x").health.warming_since().is_none());
    }

    #[test]
    fn registry_keeps_stats_by_id_and_resets_on_new_url() {
        let r = StatsRegistry::new();
        let a = r.get("a", "http://x");
        let _slot = a.try_acquire(1).unwrap();
        assert_eq!(r.get("a", "http://x").in_flight(), 1);
        assert_eq!(r.get("a", "http://y").in_flight(), 0);
    }
}
