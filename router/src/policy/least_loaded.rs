//! `least_loaded`: power of two choices by PeakEWMA cost. Also the building
//! block of `cost_aware` (per tier) and of `affinity` without a key.

use crate::entry::Entry;
use crate::hash::SplitMix;

use super::seam::{Candidates, Choose, Segment};

/// The less costly of two random replicas first, then the others from a
/// random offset.
#[derive(Debug)]
pub(crate) struct LeastLoaded;

impl Choose for LeastLoaded {
    fn order<'t>(&'t self, c: &Candidates<'t, '_>, rng: &mut SplitMix, out: &mut Vec<Segment<'t>>) {
        out.push(p2c(c, c.lane.replicas(), rng));
    }
}

/// Power of two choices over a non-empty `replicas`, by PeakEWMA cost: the
/// two random replicas are ordered by [`pair`].
pub(crate) fn p2c<'t>(
    c: &Candidates<'t, '_>,
    replicas: &'t [usize],
    rng: &mut SplitMix,
) -> Segment<'t> {
    let n = replicas.len();
    if n == 1 {
        return c.segment(replicas, [Some(replicas[0]), None], 0);
    }
    let a = rng.below(n);
    let b = (a + 1 + rng.below(n - 1)) % n;
    let (first, second) = pair(c, replicas[a], replicas[b]);
    c.segment(replicas, [Some(first), Some(second)], rng.below(n))
}

/// Orders two replicas by PeakEWMA cost, cheaper first (ties keep the
/// random order they came in):
///
/// `latency × (in_flight + 1) / (max_concurrency × slow-start ramp)`
///
/// Latency is the peak-sensitive EWMA of time to response headers. A
/// replica with no samples takes its peer's latency, so a new replica
/// competes on load alone; a stale estimate fades toward the peer's over
/// ~10 s without samples, so one slow answer long ago cannot starve an idle
/// replica. Dividing by `max_concurrency` compares load per GPU slot: with
/// equal capacities it is exactly `latency × (in_flight + 1)`; with unequal
/// ones a 64-slot server is not judged full at the load that fills an
/// 8-slot one. The cap itself is enforced by `admit`, not here.
///
/// With fresh engine figures (a replica with an `engine`), the load is the
/// engine's own estimate (`EngineView::load`: running + waiting, corrected
/// by our sends and completions since the scrape) instead of our in-flight:
/// requests others put there count too, ours are not counted twice. KV-cache
/// use scales the cost by `1 + kv_weight × kv`: a replica about to preempt
/// is dearer.
fn pair(c: &Candidates<'_, '_>, a: usize, b: usize) -> (usize, usize) {
    let (entries, now) = (c.entries, c.now);
    let (ea, eb) = (&entries[a], &entries[b]);
    let (la, lb) = match (ea.stats.peak_latency(now), eb.stats.peak_latency(now)) {
        (None, None) => (1.0, 1.0),
        (Some((x, _)), None) | (None, Some((x, _))) => (x, x),
        (Some((x, wa)), Some((y, wb))) => (x * wa + y * (1.0 - wa), y * wb + x * (1.0 - wb)),
    };
    let stale = c.scoring.engine_stale.as_millis() as u64;
    let cost = |e: &Entry, latency: f64| {
        let (load, kv) = e
            .engine(now, stale)
            .map_or((e.stats.in_flight(), 0.0), |v| (v.load, v.kv));
        latency * f64::from(load + 1) * (1.0 + c.scoring.kv_weight * kv)
            / (f64::from(e.replica.max_concurrency) * e.ramp(now))
    };
    if cost(eb, lb) < cost(ea, la) {
        (b, a)
    } else {
        (a, b)
    }
}
