//! The per-version replica orders, one function per policy. Each builds a
//! [`Segment`]: up to two replicas first (`head`), then the rest from a
//! random offset. All of them are O(1) or O(log n) per request except
//! `affinity`, which scores every replica of the version once (rendezvous
//! hashing needs that; GPU groups are tens to hundreds of replicas).
//!
//! What they read is live (in-flight, latency, health) but they change
//! nothing: the slot is taken later, by `admit`, with a compare-and-swap.

use switchyard_config::Affinity;

use crate::entry::Entry;
use crate::hash::{SplitMix, mix, unit};
use crate::pick::Segment;
use crate::table::ReplicaTable;

impl ReplicaTable {
    /// Power of two choices over a non-empty `replicas`, by PeakEWMA cost:
    /// the two random replicas are ordered by [`ReplicaTable::pair`].
    pub(crate) fn least_loaded<'t>(
        &self,
        replicas: &'t [usize],
        residency: &'t [String],
        rng: &mut SplitMix,
        now: u64,
    ) -> Segment<'t> {
        let n = replicas.len();
        if n == 1 {
            return Segment {
                replicas,
                head: [Some(replicas[0]), None],
                start: 0,
                residency,
            };
        }
        let a = (rng.next() % n as u64) as usize;
        let b = (a + 1 + (rng.next() % (n as u64 - 1)) as usize) % n;
        let (first, second) = self.pair(replicas[a], replicas[b], now);
        Segment {
            replicas,
            head: [Some(first), Some(second)],
            start: (rng.next() % n as u64) as usize,
            residency,
        }
    }

    /// Orders two replicas by PeakEWMA cost, cheaper first (ties keep the
    /// random order they came in):
    ///
    /// `latency × (in_flight + 1) / (max_concurrency × slow-start ramp)`
    ///
    /// Latency is the peak-sensitive EWMA of time to response headers. A
    /// replica with no samples takes its peer's latency, so a new replica
    /// competes on load alone; a stale estimate fades toward the peer's
    /// over ~10 s without samples, so one slow answer long ago cannot
    /// starve an idle replica. Dividing by `max_concurrency` compares load
    /// per GPU slot: with equal capacities it is exactly `latency ×
    /// (in_flight + 1)`; with unequal ones a 64-slot server is not judged
    /// full at the load that fills an 8-slot one. The cap itself is
    /// enforced by `admit`, not here.
    pub(crate) fn pair(&self, a: usize, b: usize, now: u64) -> (usize, usize) {
        let (ea, eb) = (&self.entries[a], &self.entries[b]);
        let (la, lb) = match (ea.stats.peak_latency(now), eb.stats.peak_latency(now)) {
            (None, None) => (1.0, 1.0),
            (Some((x, _)), None) | (None, Some((x, _))) => (x, x),
            (Some((x, wa)), Some((y, wb))) => (x * wa + y * (1.0 - wa), y * wb + x * (1.0 - wb)),
        };
        let cost = |e: &Entry, latency: f64| {
            latency * f64::from(e.stats.in_flight() + 1)
                / (f64::from(e.replica.max_concurrency) * e.ramp(now))
        };
        if cost(eb, lb) < cost(ea, la) {
            (b, a)
        } else {
            (a, b)
        }
    }

    /// `weighted`: a random replica in proportion to its `weight`
    /// (`cumulative` holds the running sums), then a second draw, then the
    /// rest. A replica in slow start is accepted with probability equal to
    /// its ramp (redrawing otherwise), so its share grows from 10% of its
    /// weight to all of it over the window.
    pub(crate) fn weighted<'t>(
        &self,
        replicas: &'t [usize],
        cumulative: &[u64],
        residency: &'t [String],
        rng: &mut SplitMix,
        now: u64,
    ) -> Segment<'t> {
        let n = replicas.len();
        let total = cumulative.last().copied().unwrap_or(0).max(1);
        let draw = |rng: &mut SplitMix| {
            let point = rng.next() % total;
            cumulative.partition_point(|&c| c <= point).min(n - 1)
        };
        let mut first = draw(rng);
        for _ in 0..8 {
            let ramp = self.entries[replicas[first]].ramp(now);
            if ramp >= 1.0 || unit(rng.next()) < ramp {
                break;
            }
            first = draw(rng);
        }
        let second = (0..4).map(|_| draw(rng)).find(|&k| k != first);
        Segment {
            replicas,
            head: [Some(replicas[first]), second.map(|k| replicas[k])],
            start: (rng.next() % n as u64) as usize,
            residency,
        }
    }

    /// `affinity`: rendezvous (highest-random-weight) hashing of `key` over
    /// the replicas, with bounded load. Every replica scores
    /// `hash(key, replica id)`; the best-scoring one serves the key, so the
    /// same key keeps reaching the same replica and only the keys of a
    /// replica that leaves move. A replica that is not routable, is at its
    /// capacity, or carries more than `load_factor` × the average in-flight
    /// load (+1) is passed over for the next in score order, so a hot key
    /// spills instead of overloading one replica. Without a key it is
    /// `least_loaded`.
    pub(crate) fn affinity<'t>(
        &self,
        settings: &Affinity,
        replicas: &'t [usize],
        key: Option<u64>,
        residency: &'t [String],
        rng: &mut SplitMix,
        now: u64,
    ) -> Segment<'t> {
        let Some(key) = key else {
            return self.least_loaded(replicas, residency, rng, now);
        };
        let n = replicas.len();
        let total: u64 = replicas
            .iter()
            .map(|&i| u64::from(self.entries[i].stats.in_flight()))
            .sum();
        let bound = (settings.load_factor * (total + 1) as f64 / n as f64).ceil() as u32;
        let mut best: [Option<(u64, usize)>; 2] = [None, None];
        for &i in replicas {
            let e = &self.entries[i];
            let load = e.stats.in_flight();
            if load >= bound.min(e.capacity(now)) || !e.within(residency) || !e.routable(now) {
                continue;
            }
            let score = mix(key ^ e.seed);
            if best[0].is_none_or(|(s, _)| score > s) {
                best[1] = best[0];
                best[0] = Some((score, i));
            } else if best[1].is_none_or(|(s, _)| score > s) {
                best[1] = Some((score, i));
            }
        }
        Segment {
            replicas,
            head: best.map(|b| b.map(|(_, i)| i)),
            start: (rng.next() % n as u64) as usize,
            residency,
        }
    }
}
