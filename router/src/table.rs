//! The replica table: a config turned into what routing needs, built once per
//! config generation and then only read.
//!
//! Building is where config types become router types: each replica becomes
//! an [`Entry`], each version a [`VersionSlot`] with one lane per protocol,
//! each model a [`Group`] holding its policy with that policy's settings.

use std::collections::HashMap;

use switchyard_config::{Affinity, Config, Protocol, Scoring};

pub use crate::entry::Entry;
use crate::hash::affinity_key;
use crate::lane::{ByProtocol, Lane};
use crate::policy::Policy;
use crate::stats::StatsRegistry;

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
    pub(crate) lanes: ByProtocol<Lane>,
}

impl VersionSlot {
    /// The replicas of this version that speak `protocol`.
    pub fn speaking(&self, protocol: Protocol) -> &[usize] {
        self.lanes[protocol].replicas()
    }

    /// [`VersionSlot::speaking`] cut into price tiers, cheapest first.
    pub fn tiers(&self, protocol: Protocol) -> impl Iterator<Item = &[usize]> {
        self.lanes[protocol].tiers()
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
    /// Replica-choice policy, with its own settings.
    pub(crate) policy: Policy,
    /// Clouds/providers this group may reach (empty: any).
    pub residency: Vec<String>,
    /// Engine-signal and prefix-cache scoring settings.
    pub scoring: Scoring,
    /// Whether the group lists LoRA adapters (only then are its engines'
    /// adapter figures read).
    pub serves_adapters: bool,
}

impl Group {
    /// Whether any replica of this group speaks `protocol`.
    pub fn speaks(&self, protocol: Protocol) -> bool {
        self.versions
            .iter()
            .any(|v| !v.speaking(protocol).is_empty())
    }

    /// The `affinity` policy's settings; `None` under other policies, so
    /// the gateway only computes a key when it will be used.
    pub fn affinity(&self) -> Option<&Affinity> {
        self.policy.affinity()
    }

    /// Whether the group routes on cached prompt prefixes, so the gateway
    /// only hashes a prompt into blocks when it will be used.
    pub fn uses_prefixes(&self) -> bool {
        self.policy.uses_prefixes()
    }
}

/// Everything routing reads for one config generation. Immutable once built
/// (apart from atomics), so it can sit in an `ArcSwap` and be read by every
/// request without locks.
#[derive(Debug)]
pub struct ReplicaTable {
    pub(crate) entries: Vec<Entry>,
    /// Looked up by name on every request: a fast hasher (names are the config's).
    pub(crate) groups: HashMap<String, Group, foldhash::fast::RandomState>,
    /// Group names in config order, for listings.
    pub(crate) order: Vec<String>,
    /// LoRA adapter name -> the group serving it (`models[i].adapters`).
    pub(crate) adapters: HashMap<String, String>,
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
        let mut groups = HashMap::with_capacity_and_hasher(config.models.len(), Default::default());
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
                    VersionSlot {
                        lanes: ByProtocol::from_fn(|p| Lane::build(&entries, &replicas, p)),
                        name: v.name.clone(),
                        weight: v.weight,
                        replicas,
                    }
                })
                .collect();
            groups.insert(
                m.name.clone(),
                Group {
                    name: m.name.clone(),
                    scoring: m.routing.scoring.clone(),
                    serves_adapters: !m.adapters.is_empty(),
                    versions,
                    fallbacks: m.fallbacks.clone(),
                    policy: Policy::from_config(&m.routing),
                    residency: m.residency.clone(),
                },
            );
        }
        let order = config.models.iter().map(|m| m.name.clone()).collect();
        let adapters = config
            .models
            .iter()
            .flat_map(|m| m.adapters.iter().map(|a| (a.clone(), m.name.clone())))
            .collect();
        Self {
            entries,
            groups,
            order,
            adapters,
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

    /// For a `model` naming a LoRA adapter (`adapter` or `adapter@version`):
    /// the group to route to (`group` or `group@version`) and the adapter,
    /// which is forwarded as the model name. `None` for anything else; one
    /// emptiness check when no group lists adapters.
    pub fn adapter<'m>(&self, model: &'m str) -> Option<(String, &'m str)> {
        if self.adapters.is_empty() {
            return None;
        }
        let (name, pin) = parse_model(model);
        let group = self.adapters.get(name)?;
        Some(match pin {
            Some(v) => (format!("{group}@{v}"), name),
            None => (group.clone(), name),
        })
    }

    /// Groups in config order.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.order.iter().filter_map(|n| self.groups.get(n))
    }
}

/// Splits `group@version`. Validation forbids `@` in names, so the split is
/// unambiguous.
pub fn parse_model(model: &str) -> (&str, Option<&str>) {
    // A byte scan from the end: names are short, and `rsplit_once`'s
    // general search cost more than the scan (it runs several times per
    // request).
    match model.bytes().rposition(|b| b == b'@') {
        Some(at) if at > 0 && at + 1 < model.len() => (&model[..at], Some(&model[at + 1..])),
        _ => (model, None),
    }
}
