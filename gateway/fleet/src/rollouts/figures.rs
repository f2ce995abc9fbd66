//! Fleet-wide rollout figures: each instance counts the upstream attempts
//! of the groups with a declared rollout, per version, since it started,
//! and publishes them lease-bound under `P/figures/<instance_id>`; the
//! leader sums every live instance's counts and judges a step by the
//! difference since the step's window opened.
//!
//! Counts are cumulative (never reset), so a publication that is lost or
//! read twice changes nothing; latency is a sparse histogram with buckets
//! 2^(1/4) apart (a p95 within 19 %), which sums across instances exactly.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

/// One version's cumulative counts on one instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionCounts {
    /// Upstream attempts.
    pub requests: u64,
    /// Of which failed on the replica's side.
    pub errors: u64,
    /// Outlier-detection ejections of the version's replicas so far.
    #[serde(default)]
    pub ejections: u64,
    /// Latency bucket (see [`bucket`]) -> attempts.
    #[serde(default)]
    pub latency: BTreeMap<u16, u64>,
}

/// Group -> version -> counts: what one instance publishes.
pub type InstanceCounts = BTreeMap<String, BTreeMap<String, VersionCounts>>;

/// The bucket of a latency: `floor(4 · log2(µs))`, so bucket `b` holds
/// latencies up to `2^((b+1)/4)` µs.
pub fn bucket(latency: Duration) -> u16 {
    let us = (latency.as_micros() as f64).max(1.0);
    (4.0 * us.log2()).floor().clamp(0.0, u16::MAX as f64) as u16
}

fn bucket_upper_ms(b: u16) -> f64 {
    2f64.powf(f64::from(b + 1) / 4.0) / 1e3
}

impl VersionCounts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &VersionCounts) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.ejections += other.ejections;
        for (b, n) in &other.latency {
            *self.latency.entry(*b).or_default() += n;
        }
    }

    /// These counts less `base` (taken earlier from the same instance).
    /// An instance that restarted counts from zero again: its counts are
    /// then below `base`, and all of them are new.
    pub fn since(&self, base: &VersionCounts) -> VersionCounts {
        if self.requests < base.requests || self.ejections < base.ejections {
            return self.clone();
        }
        let latency = self
            .latency
            .iter()
            .map(|(b, n)| {
                (
                    *b,
                    n.saturating_sub(base.latency.get(b).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        VersionCounts {
            requests: self.requests - base.requests,
            errors: self.errors.saturating_sub(base.errors),
            ejections: self.ejections - base.ejections,
            latency,
        }
    }

    /// 95th percentile latency, ms (a bucket's upper bound); `None`
    /// without data.
    pub fn p95_ms(&self) -> Option<f64> {
        let total: u64 = self.latency.values().sum();
        if total == 0 {
            return None;
        }
        let rank = (total as f64 * 0.95).ceil() as u64;
        let mut seen = 0;
        for (b, n) in &self.latency {
            seen += n;
            if seen >= rank {
                return Some(bucket_upper_ms(*b));
            }
        }
        None
    }

    /// `errors / requests`, 0 without requests.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

type GroupCounts = Arc<Mutex<BTreeMap<String, VersionCounts>>>;

/// This instance's counters, fed on the request path. Only the groups
/// [`Counters::track`] named are counted: with none (no fleet, or no
/// rollout declared) an attempt costs one relaxed load; of an untracked
/// group, a lock-free load and a map lookup more.
#[derive(Debug, Default)]
pub struct Counters {
    active: AtomicBool,
    groups: ArcSwap<HashMap<String, GroupCounts>>,
}

impl Counters {
    /// Counts `groups` from now on (those already counted keep their
    /// counts); other groups are dropped.
    pub fn track<'a>(&self, groups: impl IntoIterator<Item = &'a str>) {
        let old = self.groups.load();
        let next: HashMap<String, GroupCounts> = groups
            .into_iter()
            .map(|g| {
                let counts = old.get(g).cloned().unwrap_or_default();
                (g.to_owned(), counts)
            })
            .collect();
        self.active.store(!next.is_empty(), Ordering::Relaxed);
        self.groups.store(Arc::new(next));
    }

    /// Whether any group is counted: [`Counters::observe`] does nothing
    /// otherwise (a caller may skip reading the attempt's time).
    pub fn watching(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Records one upstream attempt of `group`'s `version`.
    pub fn observe(&self, group: &str, version: &str, ok: bool, latency: Duration) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        let groups = self.groups.load();
        let Some(counts) = groups.get(group) else {
            return;
        };
        let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
        let v = match counts.get_mut(version) {
            Some(v) => v,
            None => counts.entry(version.to_owned()).or_default(),
        };
        v.requests += 1;
        v.errors += u64::from(!ok);
        *v.latency.entry(bucket(latency)).or_default() += 1;
    }

    /// Sets a version's ejection count (read from the replica table when
    /// publishing; outlier detection keeps its own cumulative count).
    pub fn set_ejections(&self, group: &str, version: &str, ejections: u64) {
        if let Some(counts) = self.groups.load().get(group) {
            let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
            counts.entry(version.to_owned()).or_default().ejections = ejections;
        }
    }

    /// Everything counted so far, for publication.
    pub fn snapshot(&self) -> InstanceCounts {
        self.groups
            .load()
            .iter()
            .map(|(g, c)| {
                let c = c.lock().unwrap_or_else(|p| p.into_inner());
                (g.clone(), c.clone())
            })
            .collect()
    }
}

/// Instance -> that instance's counts of one group's one version.
pub type PerInstance = BTreeMap<String, VersionCounts>;

/// One version's counts on every live instance, from `all` (instance ->
/// counts).
pub fn per_instance(
    all: &BTreeMap<String, InstanceCounts>,
    group: &str,
    version: &str,
) -> PerInstance {
    all.iter()
        .filter_map(|(id, c)| Some((id.clone(), c.get(group)?.get(version)?.clone())))
        .collect()
}

/// The fleet's counts since `base` (taken when the window opened): per
/// live instance its counts less its base (an instance that joined later
/// counts whole), summed. An instance gone since takes its counts with it.
pub fn window(now: &PerInstance, base: &PerInstance) -> VersionCounts {
    let mut sum = VersionCounts::default();
    for (id, counts) in now {
        let delta = match base.get(id) {
            Some(b) => counts.since(b),
            None => counts.clone(),
        };
        sum.add(&delta);
    }
    sum
}

#[cfg(test)]
#[path = "figures_tests.rs"]
mod tests;
