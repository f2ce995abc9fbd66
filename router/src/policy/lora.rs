//! LoRA affinity, laid over every policy: a request that names an adapter
//! (`models[i].adapters`) goes first to the replicas whose engine reports
//! it loaded, as the Gateway API Inference Extension's
//! `lora-affinity-scorer` does, so an adapter is loaded on few replicas
//! rather than swapped in and out of all of them.
//!
//! Each replica of the version gets a score (higher is better):
//!
//! `lora_weight × tier + prefix_weight × cached share − queue_weight × excess load − kv_weight × kv`
//!
//! - tier ([`crate::lora::Adapters::tier`]): running 1.0, waiting 0.8, a
//!   free adapter slot 0.6, none (would evict) or no fresh figures 0;
//! - cached share: only under `prefix_cache`, as that policy counts it;
//! - excess load and kv: as `prefix_cache` weighs them (`load.rs`), so an
//!   overloaded replica with the adapter loses to an idle one that can load
//!   it: with the default weights (4 : 2) a loaded adapter is worth 0.8 of
//!   a batch over a free slot, two batches over a full replica.
//!
//! When no replica of the version has fresh adapter figures (engines not
//! scraped, LoRA off, scrapes stale) there is no preference: the group's
//! own policy orders the version. Otherwise the best two go first and the
//! rest follow from a random offset (one segment: under `cost_aware` the
//! adapter outranks the price tiers). O(replicas) per version, one read
//! lock each, paid only by requests that name an adapter.

use crate::hash::SplitMix;

use super::load;
use super::seam::{Candidates, Segment};

/// Appends the LoRA-affinity order of `c`'s replicas for `adapter` to
/// `out`; `false` (nothing appended) when no replica has fresh figures.
pub(crate) fn order<'t>(
    c: &Candidates<'t, '_>,
    adapter: &str,
    rng: &mut SplitMix,
    out: &mut Vec<Segment<'t>>,
) -> bool {
    let replicas = c.lane.replicas();
    let stale = c.scoring.engine_stale.as_millis() as u64;
    let tier = |i: usize| {
        c.entries[i]
            .stats
            .lora
            .view(c.now, stale)
            .map(|a| a.tier(adapter))
    };
    if replicas.iter().all(|&i| tier(i).is_none()) {
        return false;
    }
    let least = load::least(c, replicas);
    let total = c.prefix.len().max(1) as f64;
    let s = c.scoring;
    let score = |i: usize| {
        let cached = c.entries[i].stats.prefix.matched(c.prefix) as f64 / total;
        s.lora_weight * tier(i).unwrap_or(0.0) + s.prefix_weight * cached
            - load::penalty(c, least, i)
    };
    let offset = rng.below(replicas.len());
    let head = load::best_two(replicas, offset, score);
    out.push(c.segment(replicas, head, offset));
    true
}
