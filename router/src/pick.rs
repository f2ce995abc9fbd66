//! Choosing replicas: pure functions over a table and a random number.
//!
//! [`ReplicaTable::rank`] orders every replica that may serve a request, best
//! first; [`ReplicaTable::admit`] walks that order and takes the first free
//! concurrency slot. Splitting the two keeps ranking side-effect free (it can
//! be benchmarked and property-tested) while the slot is still taken with a
//! compare-and-swap, so concurrent requests never overfill a replica.

use std::sync::atomic::Ordering;

use switchyard_config::{Policy, Protocol};

use crate::RouteError;
use crate::stats::InFlightGuard;
use crate::table::{Entry, Group, ReplicaTable, VersionSlot};

/// What the client asked for, as far as routing cares.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    /// The `model` field: `group` or `group@version`.
    pub model: &'a str,
    /// The API the client spoke; only replicas speaking it are candidates.
    pub protocol: Protocol,
}

/// Replicas that may serve a request, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranking {
    /// Indices into [`ReplicaTable::entries`].
    pub candidates: Vec<usize>,
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

/// Splits `group@version`. A model name may itself contain `@` only if it is
/// not followed by a version, which validation forbids in names.
pub fn parse_model(model: &str) -> (&str, Option<&str>) {
    match model.rsplit_once('@') {
        Some((group, version)) if !group.is_empty() && !version.is_empty() => {
            (group, Some(version))
        }
        _ => (model, None),
    }
}

impl ReplicaTable {
    /// Orders the replicas that may serve `req`: the weighted-random version's
    /// replicas first (by the group's policy), then the other weighted
    /// versions' (a full version spills to a sibling before we refuse), then
    /// each fallback group's. A pinned version (`group@v2`) gets only that
    /// version's replicas: the client asked for exactly that model.
    ///
    /// `rand` is any random `u64`; passing it in keeps this function pure.
    pub fn rank(&self, req: &RouteRequest<'_>, rand: u64) -> Result<Ranking, RouteError> {
        let (name, pin) = parse_model(req.model);
        let group = self
            .groups
            .get(name)
            .ok_or_else(|| RouteError::UnknownModel {
                model: req.model.to_owned(),
            })?;
        if !group.speaks(self, req.protocol) {
            return Err(RouteError::WrongProtocol {
                model: req.model.to_owned(),
                protocol: req.protocol,
            });
        }
        let mut candidates = Vec::new();
        let mut rng = SplitMix(rand);
        if let Some(v) = pin {
            let slot = group.versions.iter().find(|s| s.name == v).ok_or_else(|| {
                RouteError::UnknownVersion {
                    group: name.to_owned(),
                    version: v.to_owned(),
                }
            })?;
            self.push_version(group, slot, req.protocol, &mut rng, &mut candidates);
        } else {
            self.push_group(group, req.protocol, &mut rng, &mut candidates);
            for fb in &group.fallbacks {
                if let Some(g) = self.groups.get(fb) {
                    self.push_group(g, req.protocol, &mut rng, &mut candidates);
                }
            }
        }
        Ok(Ranking { candidates })
    }

    /// Takes a slot on the first candidate that has one.
    pub fn admit<'t>(&'t self, model: &str, ranking: &Ranking) -> Result<Admitted<'t>, RouteError> {
        ranking
            .candidates
            .iter()
            .find_map(|&i| {
                let entry = &self.entries[i];
                let guard = entry.stats.try_acquire(entry.replica.max_concurrency)?;
                Some(Admitted {
                    index: i,
                    entry,
                    guard,
                })
            })
            .ok_or_else(|| RouteError::NoCapacity {
                model: model.to_owned(),
            })
    }

    fn push_group(&self, g: &Group, proto: Protocol, rng: &mut SplitMix, out: &mut Vec<usize>) {
        let eligible: Vec<&VersionSlot> = g
            .versions
            .iter()
            .filter(|v| v.weight > 0)
            .filter(|v| {
                v.replicas
                    .iter()
                    .any(|&i| self.entries[i].replica.protocol == proto)
            })
            .collect();
        let total: u64 = eligible.iter().map(|v| u64::from(v.weight)).sum();
        if total == 0 {
            return;
        }
        let mut point = rng.next() % total;
        let first = eligible
            .iter()
            .position(|v| {
                let w = u64::from(v.weight);
                if point < w {
                    true
                } else {
                    point -= w;
                    false
                }
            })
            .unwrap_or(0);
        self.push_version(g, eligible[first], proto, rng, out);
        for (k, v) in eligible.iter().enumerate() {
            if k != first {
                self.push_version(g, v, proto, rng, out);
            }
        }
    }

    fn push_version(
        &self,
        g: &Group,
        v: &VersionSlot,
        proto: Protocol,
        rng: &mut SplitMix,
        out: &mut Vec<usize>,
    ) {
        let start = out.len();
        out.extend(
            v.replicas
                .iter()
                .copied()
                .filter(|&i| self.entries[i].replica.protocol == proto),
        );
        let mine = &mut out[start..];
        match g.policy {
            Policy::RoundRobin => {
                if !mine.is_empty() {
                    let turn = g.cursor.fetch_add(1, Ordering::Relaxed) % mine.len();
                    mine.rotate_left(turn);
                }
            }
            Policy::LeastLoaded => {
                let salt = rng.next();
                mine.sort_by_cached_key(|&i| load_key(&self.entries[i], i, salt));
            }
        }
    }
}

/// Least utilisation (in-flight / max_concurrency) first; ties in a
/// per-request random order, so an idle fleet shares traffic evenly instead
/// of every request landing on the first replica in the file.
fn load_key(e: &Entry, index: usize, salt: u64) -> (u64, u64) {
    let util = u64::from(e.stats.in_flight()) * 1_000_000 / u64::from(e.replica.max_concurrency);
    (util, SplitMix(salt ^ index as u64).next())
}

/// A tiny deterministic generator: one `u64` of caller randomness is enough
/// for all the choices a request needs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
