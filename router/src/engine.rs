//! What a replica's inference engine last reported about its load: queue
//! depth, running requests, KV-cache use, scraped from its `/metrics` by
//! the control plane and read here on every ranking.
//!
//! Scrapes are periodic, so between two of them a replica absorbs a whole
//! interval of arrivals the figures do not show (the "stale scrape" problem
//! of endpoint pickers). The load used for routing is therefore the
//! engine's running + waiting at the scrape plus the change of this
//! gateway's own in-flight count since (its sends minus its completions),
//! never below that in-flight count. Figures older than the group's `engine_stale_ms` are ignored:
//! routing falls back to in-flight and latency alone.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// One scrape's figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EngineFigures {
    /// Requests waiting in the engine's queue.
    pub waiting: u32,
    /// Requests the engine is running.
    pub running: u32,
    /// KV-cache use, 0..=1 (`None`: the engine reports none, e.g. TGI).
    pub kv: Option<f64>,
}

/// The latest figures of one replica, lock-free.
#[derive(Debug, Default)]
pub struct EngineLoad {
    waiting: AtomicU32,
    running: AtomicU32,
    /// KV use in millionths; `u32::MAX`: not reported.
    kv_ppm: AtomicU32,
    /// This gateway's in-flight count when the figures were taken.
    in_flight_then: AtomicU32,
    /// [`crate::clock`] time of the scrape; 0: never.
    at_ms: AtomicU64,
}

/// The figures routing uses, corrected for arrivals since the scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineView {
    /// Waiting in the engine plus this gateway's sends since the scrape.
    pub queue: u32,
    /// KV-cache use, 0..=1 (0 when not reported).
    pub kv: f64,
    /// Requests on the engine now, estimated: running + waiting at the
    /// scrape, plus our sends minus our completions since (the change of
    /// our in-flight count), and never below our own in-flight. Counts what
    /// others (another gateway, a batch job) put there, which our in-flight
    /// alone cannot see, and does not count our queued requests twice.
    pub load: u32,
}

impl EngineLoad {
    /// Stores a scrape taken at `now` while this gateway had `in_flight`
    /// requests on the replica.
    pub fn update(&self, f: EngineFigures, in_flight: u32, now: u64) {
        self.waiting.store(f.waiting, Ordering::Relaxed);
        self.running.store(f.running, Ordering::Relaxed);
        let kv = f.kv.map_or(u32::MAX, |k| (k.clamp(0.0, 1.0) * 1e6) as u32);
        self.kv_ppm.store(kv, Ordering::Relaxed);
        self.in_flight_then.store(in_flight, Ordering::Relaxed);
        self.at_ms.store(now.max(1), Ordering::Release);
    }

    /// The figures as last scraped, and when (`None`: never).
    pub fn last(&self) -> Option<(EngineFigures, u64)> {
        let at = self.at_ms.load(Ordering::Acquire);
        (at != 0).then(|| {
            let kv = self.kv_ppm.load(Ordering::Relaxed);
            (
                EngineFigures {
                    waiting: self.waiting.load(Ordering::Relaxed),
                    running: self.running.load(Ordering::Relaxed),
                    kv: (kv != u32::MAX).then(|| f64::from(kv) / 1e6),
                },
                at,
            )
        })
    }

    /// Requests the engine reported running at its last scrape (0: never).
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    /// What routing uses at `now` with `in_flight` requests of ours on the
    /// replica: `None` when the figures are missing or older than
    /// `stale_ms`.
    pub fn view(&self, in_flight: u32, now: u64, stale_ms: u64) -> Option<EngineView> {
        let (f, at) = self.last()?;
        if now.saturating_sub(at) > stale_ms {
            return None;
        }
        let then = self.in_flight_then.load(Ordering::Relaxed);
        let since = in_flight.saturating_sub(then);
        let engine_then = i64::from(f.running) + i64::from(f.waiting);
        let load = (engine_then + i64::from(in_flight) - i64::from(then)).max(i64::from(in_flight));
        Some(EngineView {
            queue: f.waiting.saturating_add(since),
            kv: f.kv.unwrap_or(0.0),
            load: u32::try_from(load).unwrap_or(u32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_figures_count_our_sends_since_the_scrape_and_stale_ones_none() {
        let e = EngineLoad::default();
        assert_eq!(e.view(3, 1_000, 2_000), None, "never scraped");
        e.update(
            EngineFigures {
                waiting: 2,
                running: 4,
                kv: Some(0.5),
            },
            1,
            1_000,
        );
        let v = e.view(4, 1_200, 2_000).unwrap();
        assert_eq!(v.queue, 2 + 3, "three requests sent since the scrape");
        assert!((v.kv - 0.5).abs() < 1e-6);
        assert_eq!(v.load, 2 + 4 + 3, "engine's 6 then, 3 more of ours since");
        assert_eq!(
            e.view(0, 1_200, 2_000).unwrap().load,
            5,
            "one of ours finished since: the engine has one less"
        );
        assert_eq!(e.view(0, 3_001, 2_000), None, "older than engine_stale_ms");
        e.update(
            EngineFigures {
                waiting: 0,
                running: 0,
                kv: None,
            },
            0,
            4_000,
        );
        assert_eq!(
            e.view(0, 4_000, 2_000).unwrap().kv,
            0.0,
            "TGI reports no KV"
        );
    }
}
