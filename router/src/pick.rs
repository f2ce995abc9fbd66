//! Choosing replicas: pure functions over a table and a random number.
//!
//! [`ReplicaTable::rank`] decides the order in which replicas may serve a
//! request; [`ReplicaTable::admit`] walks that order and takes the first free
//! concurrency slot. Splitting the two keeps ranking side-effect free (it can
//! be benchmarked and property-tested) while the slot is still taken with a
//! compare-and-swap, so concurrent requests never overfill a replica.
//!
//! Ranking picks the versions (weighted, or pinned by the affinity key) and
//! groups (fallbacks); within a version the group's policy orders the
//! replicas (the `policy` module). Ranking is lazy and O(1) per version for
//! every policy but `affinity`: only what `admit` actually walks is ever
//! looked at, so a 10,000-replica group costs what a 10-replica one does.
//!
//! Time is a parameter (`rank_at`, `admit_at`; `rank`/`admit` read
//! [`clock`]), so slow start and decay are testable without sleeping.

use switchyard_config::Protocol;

use crate::error::RouteError;
use crate::hash::{SplitMix, mix};
use crate::health::{Admission, HealthState, clock};
use crate::policy::{Candidates, Segment};
use crate::stats::InFlightGuard;
pub use crate::table::parse_model;
use crate::table::{Entry, Group, ReplicaTable, VersionSlot};

/// What the client asked for, as far as routing cares.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    /// The `model` field: `group` or `group@version`.
    pub model: &'a str,
    /// The API the client spoke; only replicas speaking it are candidates.
    pub protocol: Protocol,
    /// `x-switchyard-clouds`: cloud ids or providers the request may reach
    /// (empty: wherever the group may go).
    pub clouds: &'a [&'a str],
    /// `affinity` policy: hash of the session header or prompt prefix
    /// ([`crate::affinity_key`]); `None` routes by load. Whatever the policy, a
    /// key also pins the version choice (sticky sessions across rollouts).
    pub affinity_key: Option<u64>,
    /// `prefix_cache` policy: the prompt's chained block hashes
    /// ([`crate::prefix_blocks`]); empty for other policies.
    pub prefix: &'a [u64],
    /// The LoRA adapter the client named in `model` (resolved by
    /// [`ReplicaTable::adapter`]); `model` is then its group.
    pub adapter: Option<&'a str>,
}

/// The order in which replicas may serve one request, best first.
#[derive(Debug, Clone)]
pub struct Ranking<'t> {
    segments: Vec<Segment<'t>>,
    table: &'t ReplicaTable,
    /// The request's own cloud restriction (owned: it outlives the headers).
    clouds: Vec<String>,
    /// The prompt's blocks, recorded into the admitted replica's prefix
    /// index (owned for the same reason; empty unless `prefix_cache`).
    prefix: Vec<u64>,
    /// That index's capacity (the group's `prefix_index_blocks`).
    prefix_capacity: usize,
}

impl Ranking<'_> {
    /// Candidate replica indices (into [`ReplicaTable::entries`]), best
    /// first, only where both the group's residency and the request allow.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.segments.iter().flat_map(move |s| {
            s.iter().filter(move |&i| {
                let e = &self.table.entries[i];
                e.within(s.residency) && e.within(&self.clouds)
            })
        })
    }
}

/// A replica with one of its slots held for this request.
#[derive(Debug)]
pub struct Admitted<'t> {
    /// Index of the chosen replica in [`ReplicaTable::entries`].
    pub index: usize,
    /// The chosen replica.
    pub entry: &'t Entry,
    /// Its slot; release by dropping (or `finish`).
    pub guard: InFlightGuard,
}

impl ReplicaTable {
    /// Orders the replicas that may serve `req`: the weighted-random version's
    /// replicas first (by the group's policy), then the other weighted
    /// versions' (a full version spills to a sibling before we refuse), then
    /// each fallback group's. A pinned version (`group@v2`) gets only that
    /// version's replicas: the client asked for exactly that model.
    ///
    /// `rand` is any random `u64`; passing it in keeps this function pure.
    pub fn rank(&self, req: &RouteRequest<'_>, rand: u64) -> Result<Ranking<'_>, RouteError> {
        self.rank_at(req, rand, clock())
    }

    /// [`ReplicaTable::rank`] at time `now` ([`clock`] scale).
    pub fn rank_at(
        &self,
        req: &RouteRequest<'_>,
        rand: u64,
        now: u64,
    ) -> Result<Ranking<'_>, RouteError> {
        let (name, pin) = parse_model(req.model);
        let group = self
            .groups
            .get(name)
            .ok_or_else(|| RouteError::UnknownModel {
                model: req.model.to_owned(),
            })?;
        if !group.speaks(req.protocol) {
            return Err(RouteError::WrongProtocol {
                model: req.model.to_owned(),
                protocol: req.protocol,
            });
        }
        let mut cx = Cx {
            proto: req.protocol,
            rng: SplitMix(rand),
            now,
            key: req.affinity_key,
            prefix: req.prefix,
            adapter: req.adapter,
        };
        let mut segments = Vec::new();
        if let Some(v) = pin {
            let slot = group.versions.iter().find(|s| s.name == v).ok_or_else(|| {
                RouteError::UnknownVersion {
                    group: name.to_owned(),
                    version: v.to_owned(),
                }
            })?;
            self.push_version(group, slot, &mut cx, &mut segments);
        } else {
            self.push_group(group, &mut cx, &mut segments);
            for fb in &group.fallbacks {
                if let Some(g) = self.groups.get(fb) {
                    self.push_group(g, &mut cx, &mut segments);
                }
            }
        }
        let ranking = Ranking {
            segments,
            table: self,
            clouds: req.clouds.iter().map(|c| (*c).to_owned()).collect(),
            prefix: if group.uses_prefixes() {
                req.prefix.to_vec()
            } else {
                Vec::new()
            },
            prefix_capacity: group.scoring.prefix_index_blocks,
        };
        let restricted = !req.clouds.is_empty()
            || !group.residency.is_empty()
            || group
                .fallbacks
                .iter()
                .any(|f| self.groups.get(f).is_some_and(|g| !g.residency.is_empty()));
        if restricted && ranking.iter().next().is_none() {
            return Err(RouteError::OutsideResidency {
                model: req.model.to_owned(),
                clouds: req.clouds.join(","),
            });
        }
        Ok(ranking)
    }

    /// Takes a slot on the first candidate that has one, skipping replicas
    /// in `tried` (earlier attempts of this request) and ejected ones.
    ///
    /// Panic mode, as in Envoy: when fewer than half of the candidates are
    /// healthy, ejection is ignored and traffic spreads over all of them;
    /// outlier detection that has ejected most of a fleet is more likely
    /// wrong (or the fleet is down anyway) than the replicas it ejected.
    /// The health count is only taken once an ejected replica is met, so the
    /// common path stays O(1).
    pub fn admit<'t>(
        &'t self,
        model: &str,
        ranking: &Ranking<'_>,
        tried: &[usize],
    ) -> Result<Admitted<'t>, RouteError> {
        self.admit_at(model, ranking, tried, clock())
    }

    /// [`ReplicaTable::admit`] at time `now` ([`clock`] scale). A replica
    /// in slow start is admitted only up to its ramped capacity.
    pub fn admit_at<'t>(
        &'t self,
        model: &str,
        ranking: &Ranking<'_>,
        tried: &[usize],
        now: u64,
    ) -> Result<Admitted<'t>, RouteError> {
        self.admit_where_at(model, ranking, |i| !tried.contains(&i), now)
    }

    /// [`ReplicaTable::admit_at`] over the candidates `keep` accepts (the
    /// attempt loop skips tried replicas and groups that cannot serve).
    pub fn admit_where_at<'t>(
        &'t self,
        model: &str,
        ranking: &Ranking<'_>,
        keep: impl Fn(usize) -> bool,
        now: u64,
    ) -> Result<Admitted<'t>, RouteError> {
        self.admit_among(model, ranking, || ranking.iter().filter(|&i| keep(i)), now)
    }

    /// Takes a slot on one of the replicas of `group` at the head of the
    /// ranking (the requested group comes first), tried or not: a retry
    /// that prefers the model the client asked for over its fallbacks.
    pub fn admit_group<'t>(
        &'t self,
        model: &str,
        ranking: &Ranking<'_>,
        group: &str,
    ) -> Result<Admitted<'t>, RouteError> {
        self.admit_group_at(model, ranking, group, clock())
    }

    /// [`ReplicaTable::admit_group`] at time `now` ([`clock`] scale).
    pub fn admit_group_at<'t>(
        &'t self,
        model: &str,
        ranking: &Ranking<'_>,
        group: &str,
        now: u64,
    ) -> Result<Admitted<'t>, RouteError> {
        self.admit_group_where_at(model, ranking, group, |_| true, now)
    }

    /// [`ReplicaTable::admit_group_at`] over the replicas `keep` accepts
    /// (the attempt loop leaves out those that cannot carry the request).
    pub fn admit_group_where_at<'t>(
        &'t self,
        model: &str,
        ranking: &Ranking<'_>,
        group: &str,
        keep: impl Fn(usize) -> bool,
        now: u64,
    ) -> Result<Admitted<'t>, RouteError> {
        self.admit_among(
            model,
            ranking,
            || {
                ranking
                    .iter()
                    .take_while(|&i| self.entries[i].replica.model == group)
                    .filter(|&i| keep(i))
            },
            now,
        )
    }

    /// The walk of `admit_at` over the candidates `fresh` yields.
    fn admit_among<'t, I: Iterator<Item = usize>>(
        &'t self,
        model: &str,
        ranking: &Ranking<'_>,
        fresh: impl Fn() -> I,
        now: u64,
    ) -> Result<Admitted<'t>, RouteError> {
        let mut panic: Option<bool> = None;
        // Replicas a reload removed (draining) are last resorts: a request
        // that pinned the old snapshot uses them only when nothing else in
        // it can serve, and never once their drain window is over.
        let draining = std::cell::Cell::new(false);
        let last_resort = std::iter::from_fn(|| draining.get().then(&fresh))
            .take(1)
            .flatten();
        for (pass, i) in fresh().map(|i| (0, i)).chain(last_resort.map(|i| (1, i))) {
            let entry = &self.entries[i];
            // Cordoned by an operator: never, not even as a last resort.
            if entry.stats.is_cordoned() {
                continue;
            }
            if entry.stats.is_draining() {
                if pass == 0 {
                    draining.set(true);
                    continue;
                }
                if entry.stats.is_retired() {
                    continue;
                }
            } else if pass == 1 {
                continue;
            }
            // The readiness gate: never before its first healthy probe,
            // panic mode or not.
            if entry.stats.health.is_unready() {
                continue;
            }
            let admission = match entry.stats.health.admit(now) {
                Some(admission) => admission,
                None if *panic.get_or_insert_with(|| self.mostly_ejected(fresh(), now)) => {
                    Admission::Normal
                }
                None => continue,
            };
            match entry.stats.try_acquire(entry.capacity(now)) {
                Some(mut guard) => {
                    guard.set_admission(admission);
                    // The engine will cache this prompt's blocks.
                    entry
                        .stats
                        .prefix
                        .record(&ranking.prefix, ranking.prefix_capacity);
                    return Ok(Admitted {
                        index: i,
                        entry,
                        guard,
                    });
                }
                None if admission == Admission::Probe => entry.stats.health.release_probe(),
                None => {}
            }
        }
        Err(RouteError::NoCapacity {
            model: model.to_owned(),
        })
    }

    fn push_group<'t>(&'t self, g: &'t Group, cx: &mut Cx, out: &mut Vec<Segment<'t>>) {
        let proto = cx.proto;
        let eligible = || {
            g.versions
                .iter()
                .filter(move |v| v.weight > 0 && !v.speaking(proto).is_empty())
        };
        let total: u64 = eligible().map(|v| u64::from(v.weight)).sum();
        if total == 0 {
            return;
        }
        // A request with a key (session header, prompt prefix) always lands
        // on the same version for the same weights, so a conversation does
        // not flip between versions mid-rollout; as a canary's weight grows,
        // sessions only move toward it, never back and forth.
        let mut point = cx.key.map_or_else(|| cx.rng.next(), mix) % total;
        let mut first = 0;
        for (k, v) in eligible().enumerate() {
            let w = u64::from(v.weight);
            if point < w {
                first = k;
                break;
            }
            point -= w;
        }
        // Chosen version first, then the others in config order.
        if let Some(v) = eligible().nth(first) {
            self.push_version(g, v, cx, out);
        }
        for (k, v) in eligible().enumerate() {
            if k != first {
                self.push_version(g, v, cx, out);
            }
        }
    }

    /// One version's candidates, in the order of the group's policy.
    fn push_version<'t>(
        &'t self,
        g: &'t Group,
        v: &'t VersionSlot,
        cx: &mut Cx,
        out: &mut Vec<Segment<'t>>,
    ) {
        let lane = &v.lanes[cx.proto];
        if lane.replicas().is_empty() {
            return;
        }
        let candidates = Candidates {
            entries: &self.entries,
            lane,
            residency: &g.residency,
            key: cx.key,
            now: cx.now,
            scoring: &g.scoring,
            prefix: cx.prefix,
            adapter: cx.adapter,
        };
        g.policy.order(&candidates, &mut cx.rng, out);
    }

    /// Fewer than half of `candidates` can take traffic at `now`.
    fn mostly_ejected(&self, candidates: impl Iterator<Item = usize>, now: u64) -> bool {
        let (mut healthy, mut total) = (0usize, 0usize);
        for i in candidates {
            let health = &self.entries[i].stats.health;
            if health.is_unready() {
                continue;
            }
            total += 1;
            let state = health.state(now);
            if !matches!(state, HealthState::Ejected { .. } | HealthState::Down) {
                healthy += 1;
            }
        }
        healthy * 2 < total
    }
}

/// What ranking carries from version to version for one request.
struct Cx<'a> {
    proto: Protocol,
    rng: SplitMix,
    now: u64,
    key: Option<u64>,
    prefix: &'a [u64],
    adapter: Option<&'a str>,
}
