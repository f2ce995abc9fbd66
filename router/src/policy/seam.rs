//! The seam every policy implements: what it reads ([`Candidates`]), what it
//! returns ([`Segment`]) and the trait itself ([`Choose`]).
//!
//! Kept apart from `policy/mod.rs` so the policy files import this and the
//! module root imports the policy files, and neither imports the other.

use std::fmt::Debug;

use switchyard_config::{Affinity, Scoring};

use crate::entry::Entry;
use crate::hash::SplitMix;
use crate::lane::Lane;

/// One replica-choice policy. Implementations are pure: they read live
/// numbers (in-flight, latency, health) but change nothing except their own
/// cursor, if any; the slot is taken later, by `admit`, with a
/// compare-and-swap. They must stay O(1) or O(log n) per version unless
/// the policy's semantics need more (rendezvous hashing scores every
/// replica), because ranking is on every request's path.
pub(crate) trait Choose: Debug + Send + Sync {
    /// Appends the order of `c`'s replicas for this request to `out`:
    /// usually one segment; `cost_aware` adds one per price tier.
    fn order<'t>(&'t self, c: &Candidates<'t, '_>, rng: &mut SplitMix, out: &mut Vec<Segment<'t>>);

    /// The `affinity` policy's settings; `None` for every other policy, so
    /// the gateway only hashes a session or prompt when it will be used.
    fn affinity(&self) -> Option<&Affinity> {
        None
    }

    /// Whether it ranks on the prompt's cached blocks; only then does the
    /// gateway hash the prompt.
    fn uses_prefixes(&self) -> bool {
        false
    }
}

/// What a policy sees of one version for one request.
pub(crate) struct Candidates<'t, 'r> {
    /// All replicas of the table (the lane holds indices into it).
    pub(crate) entries: &'t [Entry],
    /// This version's replicas that speak the request's protocol; never empty.
    pub(crate) lane: &'t Lane,
    /// The group's residency.
    pub(crate) residency: &'t [String],
    /// The request's affinity key, if any.
    pub(crate) key: Option<u64>,
    /// Now, on the [`crate::health::clock`] scale.
    pub(crate) now: u64,
    /// The group's engine-signal and prefix-cache scoring settings.
    pub(crate) scoring: &'t Scoring,
    /// The request's prompt blocks (`prefix_cache` only; else empty).
    pub(crate) prefix: &'r [u64],
    /// The LoRA adapter the request names, if any.
    pub(crate) adapter: Option<&'r str>,
}

impl<'t> Candidates<'t, '_> {
    /// A segment over `replicas` with `head` first, then the rest from `start`.
    pub(crate) fn segment(
        &self,
        replicas: &'t [usize],
        head: [Option<usize>; 2],
        start: usize,
    ) -> Segment<'t> {
        Segment {
            replicas,
            head,
            start,
            residency: self.residency,
        }
    }
}

/// One version's replicas in this request's order: `head` first, then the
/// rest of `replicas` starting at `start`. Lazy: nothing past what `admit`
/// walks is ever looked at.
#[derive(Debug, Clone)]
pub(crate) struct Segment<'t> {
    pub(crate) replicas: &'t [usize],
    pub(crate) head: [Option<usize>; 2],
    pub(crate) start: usize,
    /// The group's residency.
    pub(crate) residency: &'t [String],
}

impl Segment<'_> {
    /// Replica indices in order, each once.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let n = self.replicas.len();
        let head = self.head;
        head.into_iter().flatten().chain(
            (0..n)
                .map(move |k| self.replicas[(self.start + k) % n])
                .filter(move |i| !head.contains(&Some(*i))),
        )
    }
}
