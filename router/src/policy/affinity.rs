//! `affinity`: rendezvous hashing of a session or prompt key, with bounded
//! load.

use switchyard_config::Affinity as Settings;

use crate::hash::{SplitMix, mix};

use super::least_loaded::p2c;
use super::seam::{Candidates, Choose, Segment};

/// No replica index: replica indices are positions in a `Vec`.
const EMPTY: usize = usize::MAX;

/// Holds its settings, so no other policy can carry (or miss) them.
#[derive(Debug)]
pub(crate) struct Affinity {
    settings: Settings,
}

impl Affinity {
    pub(crate) fn new(settings: Settings) -> Self {
        Self { settings }
    }
}

impl Choose for Affinity {
    /// Rendezvous (highest-random-weight) hashing of the key over the
    /// replicas. Every replica scores `hash(key, replica id)`; the
    /// best-scoring one serves the key, so the same key keeps reaching the
    /// same replica and only the keys of a replica that leaves move. A
    /// replica that is not routable, is at its capacity, or carries more
    /// than `load_factor` × the average in-flight load (+1) is passed over
    /// for the next in score order, so a hot key spills instead of
    /// overloading one replica. Without a key it is `least_loaded`.
    ///
    /// The one policy that is O(n) per version: rendezvous hashing needs
    /// every score (GPU groups are tens to hundreds of replicas).
    fn order<'t>(&'t self, c: &Candidates<'t, '_>, rng: &mut SplitMix, out: &mut Vec<Segment<'t>>) {
        let replicas = c.lane.replicas();
        let Some(key) = c.key else {
            out.push(p2c(c, replicas, rng));
            return;
        };
        let n = replicas.len();
        let total: u64 = replicas
            .iter()
            .map(|&i| u64::from(c.entries[i].stats.in_flight()))
            .sum();
        let bound = (self.settings.load_factor * (total + 1) as f64 / n as f64).ceil() as u32;
        // Best two (score, index) so far; `EMPTY` marks a free place. Not
        // `[Option<(u64, usize)>; 2]`: the discriminants cost registers in
        // this loop, which runs once per replica (callgrind, 100 replicas:
        // 9.9k instructions per pick with Options, 8.5k without).
        let mut best = [(0u64, EMPTY); 2];
        for &i in replicas {
            let e = &c.entries[i];
            let load = e.stats.in_flight();
            if load >= bound.min(e.capacity(c.now)) || !e.within(c.residency) || !e.routable(c.now)
            {
                continue;
            }
            let score = mix(key ^ e.seed);
            if best[0].1 == EMPTY || score > best[0].0 {
                best[1] = best[0];
                best[0] = (score, i);
            } else if best[1].1 == EMPTY || score > best[1].0 {
                best[1] = (score, i);
            }
        }
        let head = best.map(|(_, i)| (i != EMPTY).then_some(i));
        out.push(c.segment(replicas, head, rng.below(n)));
    }

    fn affinity(&self) -> Option<&Settings> {
        Some(&self.settings)
    }
}
