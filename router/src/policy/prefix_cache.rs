//! `prefix_cache`: the replica whose approximate prefix cache holds the
//! longest prefix of the prompt, weighed against its load, so a shared
//! system prompt or a conversation's history is prefilled once per replica
//! rather than once per request — without piling onto one replica.
//!
//! Each replica of the version gets a score (higher is better), as the
//! inference extension's and llm-d's scorers combine theirs:
//!
//! `prefix_weight × cached share − queue_weight × excess load − kv_weight × kv`
//!
//! - cached share: leading prompt blocks found in the replica's index
//!   ([`crate::prefix::PrefixIndex`]) over the prompt's blocks;
//! - excess load: its load (the engine's running + waiting corrected by our
//!   sends since the scrape when fresh, else our in-flight) above the least loaded candidate's, in batches: per request the
//!   engine reports running when its figures are fresh, else per
//!   `max_concurrency` slot. Relative, so a busy fleet is not "full"
//!   everywhere, and in batches, so one queued batch costs a whole
//!   `queue_weight` — without it a popular system prompt pins all its
//!   conversations to one replica and queues there (measured:
//!   BENCHMARKS.md, prefix-aware routing);
//! - kv: the engine's KV-cache use, when fresh (else 0).
//!
//! With the default weights (3 : 2 : 2) a fully cached prompt outweighs
//! about one batch of extra load, never two. The best two go first;
//! `admit` still enforces `max_concurrency`. A prompt too short to have a
//! block ranks like `least_loaded`. Scoring is O(replicas × matched
//! blocks): for GPU groups (tens of replicas), not for thousands.

use crate::hash::SplitMix;

use super::least_loaded::p2c;
use super::load;
use super::seam::{Candidates, Choose, Segment};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct PrefixCache;

impl Choose for PrefixCache {
    fn order<'t>(&'t self, c: &Candidates<'t, '_>, rng: &mut SplitMix, out: &mut Vec<Segment<'t>>) {
        let replicas = c.lane.replicas();
        if c.prefix.is_empty() || replicas.len() == 1 {
            out.push(p2c(c, replicas, rng));
            return;
        }
        let total = c.prefix.len() as f64;
        let least = load::least(c, replicas);
        let score = |i: usize| {
            let cached = c.entries[i].stats.prefix.matched(c.prefix) as f64 / total;
            c.scoring.prefix_weight * cached - load::penalty(c, least, i)
        };
        // Ties (a cold prompt everywhere, equal loads) go to a random
        // replica, not always the first listed.
        let offset = rng.below(replicas.len());
        let head = load::best_two(replicas, offset, score);
        out.push(c.segment(replicas, head, offset));
    }

    fn uses_prefixes(&self) -> bool {
        true
    }
}
