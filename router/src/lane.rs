//! Per-protocol lanes: a version's replicas split by the protocol they speak,
//! prepared once per table so ranking never filters per request.
//!
//! [`ByProtocol`] is indexed by [`Protocol`] instead of one field per
//! protocol, so a new protocol is one arm in [`slot`] and one entry in
//! [`ALL`], and no code path can read one protocol's replicas with another
//! protocol's tiers or weights.

use std::ops::Index;

use switchyard_config::Protocol;

use crate::entry::Entry;

/// Every protocol, in [`slot`] order.
pub(crate) const ALL: [Protocol; 2] = [Protocol::OpenAi, Protocol::KserveV2];

/// The position of `p` in a [`ByProtocol`]; exhaustive, so a new protocol
/// does not compile until it has one.
const fn slot(p: Protocol) -> usize {
    match p {
        Protocol::OpenAi => 0,
        Protocol::KserveV2 => 1,
    }
}

/// One `T` per protocol.
#[derive(Debug)]
pub(crate) struct ByProtocol<T>([T; ALL.len()]);

impl<T> ByProtocol<T> {
    /// Builds each protocol's value with `f`.
    pub(crate) fn from_fn(mut f: impl FnMut(Protocol) -> T) -> Self {
        Self(ALL.map(&mut f))
    }
}

impl<T> Index<Protocol> for ByProtocol<T> {
    type Output = T;

    fn index(&self, p: Protocol) -> &T {
        &self.0[slot(p)]
    }
}

/// The replicas of one version that speak one protocol, with what the
/// policies need precomputed: price tiers for `cost_aware`, running weights
/// for `weighted`.
#[derive(Debug)]
pub(crate) struct Lane {
    /// Indices into the table's entries, cheapest first.
    replicas: Vec<usize>,
    /// End index (exclusive) of each run of equal price in `replicas`.
    tier_ends: Vec<usize>,
    /// Running sums of replica `weight` over `replicas` (O(log n) draw).
    cumulative: Vec<u64>,
}

impl Lane {
    /// The lane of `replicas` (indices into `entries`) for protocol `p`.
    pub(crate) fn build(entries: &[Entry], replicas: &[usize], p: Protocol) -> Self {
        let mut sorted: Vec<usize> = replicas
            .iter()
            .copied()
            .filter(|&i| entries[i].replica.protocol == p)
            .collect();
        sorted.sort_by(|&a, &b| price(&entries[a]).total_cmp(&price(&entries[b])));
        let mut tier_ends = Vec::new();
        for k in 1..=sorted.len() {
            if k == sorted.len() || price(&entries[sorted[k]]) != price(&entries[sorted[k - 1]]) {
                tier_ends.push(k);
            }
        }
        let cumulative = sorted
            .iter()
            .scan(0u64, |sum, &i| {
                *sum += u64::from(entries[i].replica.weight.max(1));
                Some(*sum)
            })
            .collect();
        Self {
            replicas: sorted,
            tier_ends,
            cumulative,
        }
    }

    /// All of the lane's replicas, cheapest first.
    pub(crate) fn replicas(&self) -> &[usize] {
        &self.replicas
    }

    /// Running weight sums matching [`Lane::replicas`].
    pub(crate) fn cumulative(&self) -> &[u64] {
        &self.cumulative
    }

    /// [`Lane::replicas`] cut into price tiers, cheapest first.
    pub(crate) fn tiers(&self) -> impl Iterator<Item = &[usize]> {
        let starts = std::iter::once(0).chain(self.tier_ends.iter().copied());
        starts
            .zip(self.tier_ends.iter().copied())
            .map(move |(a, b)| &self.replicas[a..b])
    }
}

/// A replica's price for tiering: what 1k input plus 1k output tokens cost.
fn price(e: &Entry) -> f64 {
    e.replica.cost.input_per_1k + e.replica.cost.output_per_1k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_has_its_own_slot() {
        for (k, p) in ALL.into_iter().enumerate() {
            assert_eq!(slot(p), k, "{p:?}");
        }
    }
}
