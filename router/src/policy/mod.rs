//! Replica-choice policies: how one version's replicas are ordered for one
//! request. One file per policy, all behind the [`Choose`] trait in
//! [`seam`]; [`Policy::from_config`] is the only place that names them.
//!
//! | file | policy | cost per version |
//! |---|---|---|
//! | `least_loaded.rs` | PeakEWMA power of two choices | O(1) |
//! | `cost_aware.rs` | cheapest price tier first, spill when busy | O(tiers) |
//! | `round_robin.rs` | next replica in turn | O(1) |
//! | `weighted.rs` | draw by replica `weight` | O(log n) |
//! | `affinity.rs` | rendezvous hashing, bounded load | O(n) |
//! | `prefix_cache.rs` | longest cached prompt prefix vs. queue and KV use | O(n × matched blocks) |
//!
//! `lora.rs` is not a policy but an overlay: a request naming a LoRA
//! adapter is ordered by where the adapter is loaded whenever the version's
//! engines report adapters, whatever the policy; `load.rs` holds the load
//! terms it shares with `prefix_cache`.
//!
//! # Adding a policy
//! Add its variant to `switchyard_config::Policy` (and its spelling to the
//! config validation), then here: one new file with a type implementing
//! [`Choose`] that holds its own settings, and one arm in
//! [`Policy::from_config`]. Nothing else in the router changes: ranking
//! calls [`Policy::order`] and never asks which policy it has.

mod affinity;
mod cost_aware;
mod least_loaded;
mod load;
mod lora;
mod prefix_cache;
mod round_robin;
mod seam;
mod weighted;

#[cfg(test)]
mod lora_tests;
#[cfg(test)]
mod signal_tests;
#[cfg(test)]
mod tests;

use switchyard_config::{Affinity, Routing};

use crate::hash::SplitMix;

pub(crate) use seam::{Candidates, Choose, Segment};

/// A group's policy, with the settings only that policy has (the spill
/// threshold, the round-robin cursor, the affinity settings) inside it, so
/// a group cannot carry settings for a policy it does not use.
#[derive(Debug)]
pub(crate) struct Policy(Box<dyn Choose>);

impl Policy {
    /// The router's policy for a validated routing config: the one match on
    /// the policy kind.
    pub(crate) fn from_config(routing: &Routing) -> Self {
        use switchyard_config::Policy as Kind;
        Self(match routing.policy {
            Kind::CostAware => Box::new(cost_aware::CostAware::new(routing.spill_at)),
            Kind::LeastLoaded => Box::new(least_loaded::LeastLoaded),
            Kind::RoundRobin => Box::new(round_robin::RoundRobin::default()),
            Kind::Weighted => Box::new(weighted::Weighted),
            Kind::Affinity => Box::new(affinity::Affinity::new(routing.affinity.clone())),
            Kind::PrefixCache => Box::new(prefix_cache::PrefixCache),
        })
    }

    /// Appends this request's order of `c`'s replicas to `out`: by LoRA
    /// affinity when the request names an adapter the engines report on,
    /// else by the policy.
    pub(crate) fn order<'t>(
        &'t self,
        c: &Candidates<'t, '_>,
        rng: &mut SplitMix,
        out: &mut Vec<Segment<'t>>,
    ) {
        if let Some(adapter) = c.adapter
            && lora::order(c, adapter, rng, out)
        {
            return;
        }
        self.0.order(c, rng, out);
    }

    /// The `affinity` policy's settings (see [`Choose::affinity`]).
    pub(crate) fn affinity(&self) -> Option<&Affinity> {
        self.0.affinity()
    }

    /// See [`Choose::uses_prefixes`].
    pub(crate) fn uses_prefixes(&self) -> bool {
        self.0.uses_prefixes()
    }
}
