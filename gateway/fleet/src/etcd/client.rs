//! The fleet's client of etcd: reads of the prefix, compare-and-swap
//! writes, and the wait for every live instance to confirm a revision.
//! Used by the `switchyard fleet` CLI and by an instance's admin API.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp};
use switchyard_control::keys::KeyRecord;

use super::error::FleetError;
use super::layout::Layout;
use super::state::{Desired, Doc};
use super::status::InstanceStatus;

/// How long one etcd call may take before it counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a wait reads the instances' statuses.
const POLL: Duration = Duration::from_millis(20);

/// A connection to the fleet's etcd under one prefix.
#[derive(Clone)]
pub struct FleetClient {
    client: Client,
    layout: Layout,
    endpoint: String,
}

/// Who serves a revision, after a write.
#[derive(Debug, Clone)]
pub struct Confirmation {
    /// The revision of the write.
    pub revision: i64,
    /// Live instances that serve it.
    pub confirmed: Vec<InstanceStatus>,
    /// Live instances that refused it (with their `last_refusal`).
    pub refused: Vec<InstanceStatus>,
    /// Live instances that had not reached it when the wait ended.
    pub behind: Vec<InstanceStatus>,
}

impl Confirmation {
    /// Every live instance serves it.
    pub fn complete(&self) -> bool {
        self.refused.is_empty() && self.behind.is_empty()
    }
}

impl FleetClient {
    /// Connects to `endpoint` (lazily: the first call finds out whether
    /// etcd answers) for the fleet under `prefix`.
    pub async fn connect(endpoint: &str, prefix: &str) -> Result<Self, FleetError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        let client = timed(endpoint, Client::connect([endpoint], Some(options))).await?;
        Ok(Self {
            client,
            layout: Layout::new(prefix),
            endpoint: endpoint.to_owned(),
        })
    }

    /// The key layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The raw client (watches, leases).
    pub fn raw(&self) -> Client {
        self.client.clone()
    }

    /// Runs one etcd call with the call timeout.
    pub(crate) async fn call<T>(
        &self,
        f: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, FleetError> {
        timed(&self.endpoint, f).await
    }

    /// Everything under the prefix, and the store revision it was read at.
    pub async fn list(&self) -> Result<(Desired, i64), FleetError> {
        let mut c = self.raw();
        let root = self.layout.root();
        let resp = self
            .call(c.get(root, Some(GetOptions::new().with_prefix())))
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let kvs: Vec<(String, String, i64)> = resp
            .kvs()
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    String::from_utf8_lossy(kv.value()).into_owned(),
                    kv.mod_revision(),
                )
            })
            .collect();
        let desired = Desired::from_kvs(
            &self.layout,
            kvs.iter().map(|(k, v, r)| (k.as_str(), v.as_str(), *r)),
        );
        Ok((desired, revision))
    }

    /// The config document, if there is one.
    pub async fn config(&self) -> Result<Option<Doc>, FleetError> {
        let mut c = self.raw();
        let resp = self.call(c.get(self.layout.config(), None)).await?;
        Ok(resp.kvs().first().map(|kv| Doc {
            text: String::from_utf8_lossy(kv.value()).into_owned(),
            mod_revision: kv.mod_revision(),
        }))
    }

    /// `key`'s `mod_revision` (0: absent).
    async fn mod_revision(&self, key: &str) -> Result<i64, FleetError> {
        let mut c = self.raw();
        let resp = self.call(c.get(key, None)).await?;
        Ok(resp.kvs().first().map_or(0, |kv| kv.mod_revision()))
    }

    /// Every live instance's status (unreadable ones skipped).
    pub async fn instances(&self) -> Result<Vec<InstanceStatus>, FleetError> {
        let mut c = self.raw();
        let resp = self
            .call(c.get(
                self.layout.instances(),
                Some(GetOptions::new().with_prefix()),
            ))
            .await?;
        Ok(resp
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
            .collect())
    }

    /// Writes `ops` if `key` is still at `expected` (0: absent); the
    /// write's revision, or [`FleetError::Conflict`].
    pub async fn write_if(
        &self,
        key: &str,
        expected: i64,
        ops: Vec<TxnOp>,
    ) -> Result<i64, FleetError> {
        let mut c = self.raw();
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then(ops)
            .or_else([TxnOp::get(key, None)]);
        let resp = self.call(c.txn(txn)).await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        if resp.succeeded() {
            return Ok(revision);
        }
        let found = resp
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                etcd_client::TxnOpResponse::Get(g) => {
                    Some(g.kvs().first().map_or(0, |kv| kv.mod_revision()))
                }
                _ => None,
            })
            .unwrap_or(0);
        Err(FleetError::Conflict {
            key: key.to_owned(),
            expected,
            found,
        })
    }

    /// Writes the config document if `P/config` is still at
    /// `expected` (the `mod_revision` it was read at; 0: none yet).
    pub async fn put_config(&self, text: &str, expected: i64) -> Result<i64, FleetError> {
        let key = self.layout.config();
        self.write_if(&key, expected, vec![TxnOp::put(key.as_str(), text, None)])
            .await
    }

    /// Sets `group`'s weights, compare-and-swap on the key as read now.
    pub async fn put_weights(
        &self,
        group: &str,
        weights: &BTreeMap<String, u32>,
    ) -> Result<i64, FleetError> {
        let key = self.layout.weights(group);
        let value =
            serde_json::to_string(weights).map_err(|e| FleetError::Invalid(e.to_string()))?;
        let expected = self.mod_revision(&key).await?;
        self.write_if(&key, expected, vec![TxnOp::put(key.as_str(), value, None)])
            .await
    }

    /// Removes `group`'s weight override, so the document's weights serve
    /// again (compare-and-swap on the key as read; absent: nothing to do,
    /// the revision read is returned).
    pub async fn clear_weights(&self, group: &str) -> Result<i64, FleetError> {
        let key = self.layout.weights(group);
        let expected = self.mod_revision(&key).await?;
        self.write_if(&key, expected, vec![TxnOp::delete(key.as_str(), None)])
            .await
    }

    /// All of `group`'s traffic to `version`, which becomes its stable
    /// version: both keys in one revision (promote, rollback).
    pub async fn put_stable(&self, group: &str, version: &str) -> Result<i64, FleetError> {
        let key = self.layout.weights(group);
        let value = serde_json::json!({ version: 100 }).to_string();
        let expected = self.mod_revision(&key).await?;
        let ops = vec![
            TxnOp::put(key.as_str(), value, None),
            TxnOp::put(self.layout.stable(group), version, None),
        ];
        self.write_if(&key, expected, ops).await
    }

    /// `group`'s stable version as recorded in etcd.
    pub async fn stable(&self, group: &str) -> Result<Option<String>, FleetError> {
        let mut c = self.raw();
        let resp = self.call(c.get(self.layout.stable(group), None)).await?;
        Ok(resp
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).trim().to_owned()))
    }

    /// Cordons (or uncordons) replica `id` across the fleet.
    pub async fn cordon(&self, id: &str, cordoned: bool) -> Result<i64, FleetError> {
        let mut c = self.raw();
        let key = self.layout.cordon(id);
        let header = if cordoned {
            self.call(c.put(key, "cordoned", None)).await?.take_header()
        } else {
            self.call(c.delete(key, None)).await?.take_header()
        };
        Ok(header.map_or(0, |h| h.revision()))
    }

    /// Writes key records (one revision).
    pub async fn put_keys(&self, records: &[KeyRecord]) -> Result<i64, FleetError> {
        let mut ops = Vec::with_capacity(records.len());
        for r in records {
            let value = serde_json::to_string(r).map_err(|e| FleetError::Invalid(e.to_string()))?;
            ops.push(TxnOp::put(self.layout.key(&r.id), value, None));
        }
        let mut c = self.raw();
        let resp = self.call(c.txn(Txn::new().and_then(ops))).await?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Waits (up to `timeout`) until every live instance serves
    /// `revision` or refused it.
    pub async fn wait(&self, revision: i64, timeout: Duration) -> Result<Confirmation, FleetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut c = Confirmation {
                revision,
                confirmed: Vec::new(),
                refused: Vec::new(),
                behind: Vec::new(),
            };
            for s in self.instances().await? {
                match s.confirms(revision) {
                    Some(Ok(())) => c.confirmed.push(s),
                    Some(Err(_)) => c.refused.push(s),
                    None => c.behind.push(s),
                }
            }
            if c.behind.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(c);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

async fn timed<T>(
    endpoint: &str,
    f: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, FleetError> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(FleetError::Etcd {
            endpoint: endpoint.to_owned(),
            source,
        }),
        Err(_) => Err(FleetError::Timeout {
            endpoint: endpoint.to_owned(),
            ms: CALL_TIMEOUT.as_millis() as u64,
        }),
    }
}
