//! `cost_aware`: price tiers cheapest first, least loaded within a tier.

use crate::hash::SplitMix;

use super::least_loaded::p2c;
use super::seam::{Candidates, Choose, Segment};

/// Walks the lane's price tiers cheapest first, but a tier whose
/// power-of-two winner is already at `spill_at` or above goes after all
/// the others: spill-over to dearer replicas, not refusal. With equal
/// prices it is `least_loaded`.
#[derive(Debug)]
pub(crate) struct CostAware {
    /// Spill threshold, in millionths of utilisation (integer, so it
    /// compares exactly with [`crate::entry::Entry::utilisation`]).
    spill_at: u64,
}

impl CostAware {
    /// `spill_at` as the config gives it, a fraction in (0, 1].
    pub(crate) fn new(spill_at: f64) -> Self {
        Self {
            spill_at: (spill_at * 1e6) as u64,
        }
    }
}

impl Choose for CostAware {
    fn order<'t>(&'t self, c: &Candidates<'t, '_>, rng: &mut SplitMix, out: &mut Vec<Segment<'t>>) {
        let mut full = Vec::new();
        for tier in c.lane.tiers() {
            let seg = p2c(c, tier, rng);
            let winner = &c.entries[seg.head[0].unwrap_or(tier[0])];
            // Full by our slots, or by the engine's own saturation: a queue
            // forming, or its KV cache past the spill threshold.
            let stale = c.scoring.engine_stale.as_millis() as u64;
            let engine_full = winner
                .engine(c.now, stale)
                .is_some_and(|v| v.queue > 0 || (v.kv * 1e6) as u64 >= self.spill_at);
            if winner.utilisation() >= self.spill_at || engine_full {
                full.push(seg);
            } else {
                out.push(seg);
            }
        }
        out.extend(full);
    }
}
