//! The rollout leader's etcd I/O: one consistent read of everything a
//! tick needs, and fenced compare-and-swap writes.
//!
//! Every write is one transaction that holds only if the leader key still
//! carries this leader's id and lease (a deposed leader's late write is
//! refused, not applied) and the record's `mod_revision` is the one read
//! (a concurrent writer's record is not lost); a step's record and its
//! weights go in the same transaction, so a crash between them is
//! impossible and the next leader neither repeats nor skips the step.

use std::collections::BTreeMap;

use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use serde::Deserialize;

use super::Error;
use super::figures::InstanceCounts;
use super::record::{Record, WeightsDoc};

/// The keys under one prefix `P`.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (a trailing `/` is ignored).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// `P/leader/rollouts`: the rollout leader's instance id, lease-bound.
    pub fn leader(&self) -> String {
        format!("{}/leader/rollouts", self.prefix)
    }

    /// `P/control/rollouts/`.
    pub fn records(&self) -> String {
        format!("{}/control/rollouts/", self.prefix)
    }

    /// `P/control/weights/`.
    pub fn weights(&self) -> String {
        format!("{}/control/weights/", self.prefix)
    }

    /// `P/control/stable/<group>`: the stable version, plain text (what a
    /// promote sets, and `rollback` returns to).
    pub fn stable(&self, group: &str) -> String {
        format!("{}/control/stable/{group}", self.prefix)
    }

    /// `P/instances/`: each live instance's status, lease-bound.
    pub fn instances(&self) -> String {
        format!("{}/instances/", self.prefix)
    }

    /// `P/figures/`: each live instance's rollout counts, lease-bound.
    pub fn figures(&self) -> String {
        format!("{}/figures/", self.prefix)
    }
}

/// Who may write: the leader key, its value and the lease it is bound to.
#[derive(Debug, Clone)]
pub struct Fence {
    /// The leader key.
    pub key: String,
    /// This leader's instance id (the key's value).
    pub id: String,
    /// The lease the key is bound to.
    pub lease: i64,
}

/// A stored value and its `mod_revision`.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    /// The value.
    pub value: T,
    /// The revision it was last written at.
    pub mod_revision: i64,
}

/// Everything a tick needs, read at one revision.
#[derive(Debug, Default)]
pub struct View {
    /// The store's revision of the read.
    pub revision: i64,
    /// Group -> its rollout record (unreadable ones are left out, logged).
    pub records: BTreeMap<String, Stored<Record>>,
    /// Group -> its stored weights.
    pub weights: BTreeMap<String, Stored<WeightsDoc>>,
    /// Live instance -> the revision it reports serving.
    pub instances: BTreeMap<String, i64>,
    /// Live instance -> its published counts.
    pub counts: BTreeMap<String, InstanceCounts>,
}

impl View {
    /// Whether every live instance (and there is one) serves `revision`.
    pub fn all_serve(&self, revision: i64) -> bool {
        !self.instances.is_empty() && self.instances.values().all(|r| *r >= revision)
    }
}

/// The one field of an instance's status this module reads.
#[derive(Deserialize)]
struct Status {
    revision: i64,
}

/// Reads records, weights, instances and figures in one transaction.
pub async fn read(client: &mut Client, keys: &Keys) -> Result<View, Error> {
    let prefixes = [
        keys.records(),
        keys.weights(),
        keys.instances(),
        keys.figures(),
    ];
    let gets: Vec<TxnOp> = prefixes
        .iter()
        .map(|p| TxnOp::get(p.clone(), Some(GetOptions::new().with_prefix())))
        .collect();
    let resp = client.txn(Txn::new().and_then(gets)).await?;
    let mut view = View {
        revision: resp.header().map(|h| h.revision()).unwrap_or(0),
        ..View::default()
    };
    for (i, op) in resp.op_responses().into_iter().enumerate() {
        let TxnOpResponse::Get(get) = op else {
            continue;
        };
        for kv in get.kvs() {
            let Ok(key) = kv.key_str() else { continue };
            let name = key[prefixes[i].len()..].to_owned();
            let rev = kv.mod_revision();
            match i {
                0 => {
                    if let Some(r) = parse(key, kv.value(), rev) {
                        view.records.insert(name, r);
                    }
                }
                1 => {
                    if let Some(w) = parse(key, kv.value(), rev) {
                        view.weights.insert(name, w);
                    }
                }
                2 => {
                    // A status without a readable revision serves nothing yet.
                    let served =
                        serde_json::from_slice::<Status>(kv.value()).map_or(0, |s| s.revision);
                    view.instances.insert(name, served);
                }
                _ => {
                    if let Some(c) = parse::<InstanceCounts>(key, kv.value(), rev) {
                        view.counts.insert(name, c.value);
                    }
                }
            }
        }
    }
    Ok(view)
}

fn parse<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8], rev: i64) -> Option<Stored<T>> {
    match serde_json::from_slice(value) {
        Ok(value) => Some(Stored {
            value,
            mod_revision: rev,
        }),
        Err(e) => {
            tracing::warn!(key, error = %e, "unreadable value left alone");
            None
        }
    }
}

/// Writes `group`'s record (and its weights, when given) if `fence` still
/// leads and the record is still at `expected` (0: absent). Returns the
/// write's revision, or `None` when a compare failed.
pub async fn save(
    client: &mut Client,
    keys: &Keys,
    fence: &Fence,
    group: &str,
    expected: i64,
    record: &Record,
    weights: Option<&WeightsDoc>,
) -> Result<Option<i64>, Error> {
    let record_key = format!("{}{group}", keys.records());
    let mut puts = vec![TxnOp::put(
        record_key.clone(),
        serde_json::to_vec(record)?,
        None::<PutOptions>,
    )];
    if let Some(w) = weights {
        let key = format!("{}{group}", keys.weights());
        puts.push(TxnOp::put(key, serde_json::to_vec(w)?, None::<PutOptions>));
        // A promote's new stable version goes where every instance reads
        // it (the same key `fleet promote` writes), in the same revision.
        if let Some(stable) = &w.stable {
            puts.push(TxnOp::put(
                keys.stable(group),
                stable.clone(),
                None::<PutOptions>,
            ));
        }
    }
    let txn = Txn::new()
        .when([
            Compare::value(fence.key.clone(), CompareOp::Equal, fence.id.clone()),
            Compare::lease(fence.key.clone(), CompareOp::Equal, fence.lease),
            Compare::mod_revision(record_key, CompareOp::Equal, expected),
        ])
        .and_then(puts);
    let resp = client.txn(txn).await?;
    Ok(resp
        .succeeded()
        .then(|| resp.header().map(|h| h.revision()).unwrap_or(0)))
}
