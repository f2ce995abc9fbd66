//! Series handles resolved once per config generation.
//!
//! A `prometheus-client` family finds a series by hashing its label set
//! under a read lock, and building that label set means allocating its
//! strings. Doing it per request would cost more than the rest of the
//! metrics together, so every series a request can touch is looked up
//! here, once, when a generation is first seen: per replica (same index as
//! `table.entries()`) and per model group. Handles share their atomics with
//! the family, so bumping one is what the scrape sees.

use std::collections::{HashMap, HashSet};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::{
    AttemptLabels, CLASSES, FallbackLabels, Families, GroupLabels, QueueLabels, REASONS, RESULTS,
    RequestLabels, RouteLabels, SHED,
};
use switchyard_proxy::Snapshot;

/// The model label of a request that named a model the config does not have.
pub const UNKNOWN: &str = "_unknown";

/// Histograms of one (model, version, cloud).
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub duration: Histogram,
    pub ttft: Histogram,
    pub inter_token: Histogram,
}

/// Everything a request answered by one replica bumps.
#[derive(Debug)]
pub(crate) struct ReplicaHandles {
    /// By status class (see [`super::class`]).
    pub requests: [Counter; 4],
    /// By [`super::Attempt`].
    pub attempts: [Counter; RESULTS.len()],
    pub route: Route,
}

/// Per model group (and the two pseudo-groups: unknown, none).
#[derive(Debug)]
pub(crate) struct GroupHandles {
    pub name: String,
    /// Requests no replica answered, by status class.
    pub requests: [Counter; 4],
    pub route: Route,
    /// By reason (index into [`REASONS`]).
    pub retries: [Counter; 5],
    /// By [`super::Shed`].
    pub shed: [Counter; 3],
    /// Queue wait: [admitted, shed].
    pub queue_wait: [Histogram; 2],
    /// Fallback group name and its counter.
    pub fallbacks: Vec<(String, Counter)>,
}

/// One generation's handles.
#[derive(Debug)]
pub(crate) struct Handles {
    pub generation: u64,
    pub replicas: Vec<ReplicaHandles>,
    /// Configured groups, then [`UNKNOWN`], then `""` (no model named).
    pub groups: Vec<GroupHandles>,
    /// Read by every request: a fast hasher (names are the config's).
    by_name: HashMap<String, usize, foldhash::fast::RandomState>,
    overhead: Histogram,
    /// Label keys, to drop series a later generation no longer has.
    replica_keys: HashSet<[String; 4]>,
    route_keys: HashSet<[String; 3]>,
}

impl Handles {
    pub fn build(fam: &Families, snap: &Snapshot) -> Self {
        let mut route_keys = HashSet::new();
        let mut route = |model: &str, version: &str, cloud: &str| {
            let l = RouteLabels {
                model: model.to_owned(),
                version: version.to_owned(),
                cloud: cloud.to_owned(),
            };
            route_keys.insert([l.model.clone(), l.version.clone(), l.cloud.clone()]);
            Route {
                duration: fam.duration.get_or_create_owned(&l),
                ttft: fam.ttft.get_or_create_owned(&l),
                inter_token: fam.inter_token.get_or_create_owned(&l),
            }
        };
        let mut replica_keys = HashSet::new();
        let replicas = snap
            .table
            .entries()
            .iter()
            .map(|e| {
                let r = &e.replica;
                let key = [
                    r.model.clone(),
                    r.version.clone(),
                    r.cloud.clone(),
                    r.id.clone(),
                ];
                let h = ReplicaHandles {
                    requests: std::array::from_fn(|i| {
                        fam.requests
                            .get_or_create_owned(&request_labels(&key, CLASSES[i]))
                    }),
                    attempts: std::array::from_fn(|i| {
                        fam.attempts
                            .get_or_create_owned(&attempt_labels(&key, RESULTS[i]))
                    }),
                    route: route(&r.model, &r.version, &r.cloud),
                };
                replica_keys.insert(key);
                h
            })
            .collect();
        let mut names: Vec<(String, Vec<String>)> = snap
            .table
            .groups()
            .map(|g| (g.name.clone(), g.fallbacks.clone()))
            .collect();
        names.sort();
        names.push((UNKNOWN.to_owned(), Vec::new()));
        names.push((String::new(), Vec::new()));
        let groups: Vec<GroupHandles> = names
            .into_iter()
            .map(|(name, fallbacks)| {
                let key = [name.clone(), String::new(), String::new(), String::new()];
                let by = |reason: &'static str| GroupLabels {
                    model: name.clone(),
                    reason,
                };
                let wait = |outcome: &'static str| QueueLabels {
                    model: name.clone(),
                    outcome,
                };
                GroupHandles {
                    requests: std::array::from_fn(|i| {
                        fam.requests
                            .get_or_create_owned(&request_labels(&key, CLASSES[i]))
                    }),
                    route: route(&name, "", ""),
                    retries: std::array::from_fn(|i| {
                        fam.retries.get_or_create_owned(&by(REASONS[i]))
                    }),
                    shed: std::array::from_fn(|i| fam.shed.get_or_create_owned(&by(SHED[i]))),
                    queue_wait: [
                        fam.queue_wait.get_or_create_owned(&wait("admitted")),
                        fam.queue_wait.get_or_create_owned(&wait("shed")),
                    ],
                    fallbacks: fallbacks
                        .into_iter()
                        .map(|fb| {
                            let c = fam.fallbacks.get_or_create_owned(&FallbackLabels {
                                model: name.clone(),
                                fallback: fb.clone(),
                            });
                            (fb, c)
                        })
                        .collect(),
                    name,
                }
            })
            .collect();
        let by_name = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.clone(), i))
            .collect();
        Self {
            generation: snap.generation,
            replicas,
            groups,
            by_name,
            overhead: fam.overhead.clone(),
            replica_keys,
            route_keys,
        }
    }

    /// Index into [`Handles::groups`] for a configured group name, else
    /// the `_unknown` pseudo-group. Never allocates.
    pub fn group_index(&self, group: &str) -> usize {
        self.by_name
            .get(group)
            .copied()
            .unwrap_or(self.groups.len() - 2)
    }

    /// Index of the pseudo-group of requests that named no model.
    pub fn no_group(&self) -> usize {
        self.groups.len() - 1
    }

    /// The gateway-overhead histogram.
    pub fn overhead(&self) -> &Histogram {
        &self.overhead
    }

    /// Removes from the families every series `self` had that `next` has
    /// not: replicas and groups a reload removed (or relabelled).
    pub fn remove_stale(&self, fam: &Families, next: &Handles) {
        for key in self.replica_keys.difference(&next.replica_keys) {
            for class in CLASSES {
                fam.requests.remove(&request_labels(key, class));
            }
            for result in RESULTS {
                fam.attempts.remove(&attempt_labels(key, result));
            }
        }
        for [model, version, cloud] in self.route_keys.difference(&next.route_keys) {
            let l = RouteLabels {
                model: model.clone(),
                version: version.clone(),
                cloud: cloud.clone(),
            };
            fam.duration.remove(&l);
            fam.ttft.remove(&l);
            fam.inter_token.remove(&l);
        }
        for g in &self.groups {
            if next.by_name.contains_key(&g.name) {
                for (fb, _) in &g.fallbacks {
                    let still = next.groups[next.by_name[&g.name]]
                        .fallbacks
                        .iter()
                        .any(|(n, _)| n == fb);
                    if !still {
                        fam.fallbacks.remove(&FallbackLabels {
                            model: g.name.clone(),
                            fallback: fb.clone(),
                        });
                    }
                }
                continue;
            }
            let key = [g.name.clone(), String::new(), String::new(), String::new()];
            for class in CLASSES {
                fam.requests.remove(&request_labels(&key, class));
            }
            for reason in REASONS.iter().chain(SHED.iter()) {
                let l = GroupLabels {
                    model: g.name.clone(),
                    reason,
                };
                fam.retries.remove(&l);
                fam.shed.remove(&l);
            }
            for outcome in ["admitted", "shed"] {
                fam.queue_wait.remove(&QueueLabels {
                    model: g.name.clone(),
                    outcome,
                });
            }
            for (fb, _) in &g.fallbacks {
                fam.fallbacks.remove(&FallbackLabels {
                    model: g.name.clone(),
                    fallback: fb.clone(),
                });
            }
        }
    }
}

fn request_labels(key: &[String; 4], status_class: &'static str) -> RequestLabels {
    RequestLabels {
        model: key[0].clone(),
        version: key[1].clone(),
        cloud: key[2].clone(),
        replica: key[3].clone(),
        status_class,
    }
}

fn attempt_labels(key: &[String; 4], result: &'static str) -> AttemptLabels {
    AttemptLabels {
        model: key[0].clone(),
        version: key[1].clone(),
        cloud: key[2].clone(),
        replica: key[3].clone(),
        result,
    }
}
