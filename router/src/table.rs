//! The replica table: a config turned into what routing needs, built once per
//! config generation and then only read.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use switchyard_config::{Affinity, Config, Policy, Protocol, Replica};

use crate::hash::affinity_key;
use crate::stats::{ReplicaStats, StatsRegistry};

/// One replica: its validated config plus its live stats.
#[derive(Debug)]
pub struct Entry {
    /// What the config says about it.
    pub replica: Replica,
    /// Live numbers, shared across config generations.
    pub stats: Arc<ReplicaStats>,
    /// Hash of the replica id: its rendezvous-hashing identity under the
    /// `affinity` policy (the id, not the index, so a reload that reorders
    /// replicas does not move sessions).
    pub(crate) seed: u64,
    /// Its group's slow-start window, copied here so admission needs no
    /// group lookup.
    pub(crate) slow_start_ms: u64,
}

/// One version of a group, with the indices of the replicas serving it.
#[derive(Debug)]
pub struct VersionSlot {
    /// Version name.
    pub name: String,
    /// Traffic weight.
    pub weight: u32,
    /// Indices into [`ReplicaTable::entries`].
    pub replicas: Vec<usize>,
    /// The same, split by protocol (so ranking never filters per request)
    /// and sorted by price, cheapest first.
    pub(crate) openai: Vec<usize>,
    pub(crate) kserve: Vec<usize>,
    /// End index (exclusive) of each price tier in `openai` / `kserve`.
    pub(crate) openai_tiers: Vec<usize>,
    pub(crate) kserve_tiers: Vec<usize>,
    /// Running sums of replica `weight` over `openai` / `kserve`, for the
    /// `weighted` policy's O(log n) draw.
    pub(crate) openai_weights: Vec<u64>,
    pub(crate) kserve_weights: Vec<u64>,
}

impl VersionSlot {
    /// The replicas of this version that speak `protocol`.
    pub fn speaking(&self, protocol: Protocol) -> &[usize] {
        match protocol {
            Protocol::OpenAi => &self.openai,
            Protocol::KserveV2 => &self.kserve,
        }
    }

    /// Running weight sums matching [`VersionSlot::speaking`].
    pub(crate) fn cumulative(&self, protocol: Protocol) -> &[u64] {
        match protocol {
            Protocol::OpenAi => &self.openai_weights,
            Protocol::KserveV2 => &self.kserve_weights,
        }
    }

    /// [`VersionSlot::speaking`] cut into price tiers, cheapest first.
    pub fn tiers(&self, protocol: Protocol) -> impl Iterator<Item = &[usize]> {
        let (all, ends) = match protocol {
            Protocol::OpenAi => (&self.openai, &self.openai_tiers),
            Protocol::KserveV2 => (&self.kserve, &self.kserve_tiers),
        };
        let starts = std::iter::once(0).chain(ends.iter().copied());
        starts
            .zip(ends.iter().copied())
            .map(move |(a, b)| &all[a..b])
    }
}

/// A model group as routing sees it.
#[derive(Debug)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Versions in config order.
    pub versions: Vec<VersionSlot>,
    /// Groups to try when this one cannot serve.
    pub fallbacks: Vec<String>,
    /// Replica-choice policy.
    pub policy: Policy,
    /// `cost_aware` spill threshold, in millionths of utilisation.
    pub(crate) spill_at: u64,
    /// Clouds/providers this group may reach (empty: any).
    pub residency: Vec<String>,
    /// Round-robin position (only the `round_robin` policy reads it).
    pub(crate) cursor: AtomicUsize,
    /// The `affinity` policy's settings; `None` under other policies, so
    /// the gateway only computes a key when it will be used.
    pub affinity: Option<Affinity>,
}

impl Group {
    /// Whether any replica of this group speaks `protocol`.
    pub fn speaks(&self, protocol: Protocol) -> bool {
        self.versions
            .iter()
            .any(|v| !v.speaking(protocol).is_empty())
    }
}

/// Everything routing reads for one config generation. Immutable once built
/// (apart from atomics), so it can sit in an `ArcSwap` and be read by every
/// request without locks.
#[derive(Debug)]
pub struct ReplicaTable {
    pub(crate) entries: Vec<Entry>,
    pub(crate) groups: HashMap<String, Group>,
    /// Group names in config order, for listings.
    pub(crate) order: Vec<String>,
}

impl ReplicaTable {
    /// Builds the table for `config`, taking live stats from `registry` so
    /// that replicas carried over from the previous config keep their numbers.
    pub fn build(config: &Config, registry: &StatsRegistry) -> Self {
        let entries: Vec<Entry> = config
            .replicas
            .iter()
            .map(|r| Entry {
                replica: r.clone(),
                stats: registry.get(&r.id, r.url.as_str()),
                seed: affinity_key(r.id.as_bytes()),
                slow_start_ms: config
                    .model(&r.model)
                    .map_or(0, |m| m.routing.slow_start.as_millis() as u64),
            })
            .collect();
        registry.prime();
        let mut groups = HashMap::with_capacity(config.models.len());
        for m in &config.models {
            let versions = m
                .versions
                .iter()
                .map(|v| {
                    let replicas: Vec<usize> = entries
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| e.replica.model == m.name && e.replica.version == v.name)
                        .map(|(i, _)| i)
                        .collect();
                    let (openai, openai_tiers) = by_price(&entries, &replicas, Protocol::OpenAi);
                    let (kserve, kserve_tiers) = by_price(&entries, &replicas, Protocol::KserveV2);
                    VersionSlot {
                        openai_weights: running_weights(&entries, &openai),
                        kserve_weights: running_weights(&entries, &kserve),
                        name: v.name.clone(),
                        weight: v.weight,
                        openai,
                        kserve,
                        openai_tiers,
                        kserve_tiers,
                        replicas,
                    }
                })
                .collect();
            groups.insert(
                m.name.clone(),
                Group {
                    name: m.name.clone(),
                    versions,
                    fallbacks: m.fallbacks.clone(),
                    policy: m.routing.policy,
                    spill_at: (m.routing.spill_at * 1e6) as u64,
                    residency: m.residency.clone(),
                    cursor: AtomicUsize::new(0),
                    affinity: (m.routing.policy == Policy::Affinity)
                        .then(|| m.routing.affinity.clone()),
                },
            );
        }
        let order = config.models.iter().map(|m| m.name.clone()).collect();
        Self {
            entries,
            groups,
            order,
        }
    }

    /// Whether replica `id` is in this table; the gateway uses it to prune the
    /// stats registry once a new table is serving.
    pub fn contains(&self, id: &str) -> bool {
        self.entries.iter().any(|e| e.replica.id == id)
    }

    /// All replicas, in config order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// Groups in config order.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.order.iter().filter_map(|n| self.groups.get(n))
    }
}

impl Entry {
    /// Whether this replica runs in one of `places` (cloud ids or provider
    /// names); an empty list allows everything.
    pub fn within<S: AsRef<str>>(&self, places: &[S]) -> bool {
        places.is_empty()
            || places.iter().any(|p| {
                let p = p.as_ref();
                p == self.replica.cloud || p == self.replica.provider.as_str()
            })
    }
}

/// Running sums of the replicas' weights, in `order`.
fn running_weights(entries: &[Entry], order: &[usize]) -> Vec<u64> {
    order
        .iter()
        .scan(0u64, |sum, &i| {
            *sum += u64::from(entries[i].replica.weight.max(1));
            Some(*sum)
        })
        .collect()
}

/// A replica's price for tiering: what 1k input plus 1k output tokens cost.
fn price(e: &Entry) -> f64 {
    e.replica.cost.input_per_1k + e.replica.cost.output_per_1k
}

/// The replicas of `replicas` speaking `p`, cheapest first, and the end
/// index of each run of equal price.
fn by_price(entries: &[Entry], replicas: &[usize], p: Protocol) -> (Vec<usize>, Vec<usize>) {
    let mut sorted: Vec<usize> = replicas
        .iter()
        .copied()
        .filter(|&i| entries[i].replica.protocol == p)
        .collect();
    sorted.sort_by(|&a, &b| price(&entries[a]).total_cmp(&price(&entries[b])));
    let mut ends = Vec::new();
    for k in 1..=sorted.len() {
        if k == sorted.len() || price(&entries[sorted[k]]) != price(&entries[sorted[k - 1]]) {
            ends.push(k);
        }
    }
    (sorted, ends)
}
