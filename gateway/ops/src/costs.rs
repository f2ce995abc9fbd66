//! Estimated spend, from the token usage each answer reports.
//!
//! Every successful OpenAI-shaped answer (pass-through or translated from
//! a cloud protocol) is metered by the data plane's usage tap; when
//! its body is done, the counts are booked against the replica that served
//! it, priced with that replica's `cost` (`input_per_1k`, `output_per_1k`)
//! as configured at the time. An answer that reported no usage is counted
//! as `unknown_usage` and costs nothing here: it is not guessed.
//!
//! The ledger outlives config generations (it lives in the observer),
//! keyed by replica id; a replica that moves to another group, version or
//! cloud starts a new row so no figure is booked under the wrong label.
//! `GET /admin/costs` shows it per replica and summed per model group,
//! version and cloud; [`Costs::rows`] is the accessor for metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde::Serialize;
use switchyard_config::{Cost, Replica};

use switchyard_proxy::usage::{Usage, UsageSink};

/// The gateway's cost ledger.
#[derive(Debug, Default)]
pub struct Costs {
    /// Read by every answer: a fast hasher (ids are the config's).
    rows: DashMap<String, Arc<Cell>, foldhash::fast::RandomState>,
}

/// One replica's running totals.
#[derive(Debug)]
struct Cell {
    model: String,
    version: String,
    cloud: String,
    replica: String,
    requests: AtomicU64,
    unknown_usage: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    /// Spend in billionths of the price unit (integer, so adds are exact and lock-free).
    spend_nano: AtomicU64,
}

/// Where a row booked under labels a replica no longer has is kept.
fn parked_key(id: &str, model: &str, version: &str, cloud: &str) -> String {
    format!("{id}|{model}@{version}|{cloud}")
}

impl Cell {
    fn new(r: &Replica) -> Self {
        Self {
            model: r.model.clone(),
            version: r.version.clone(),
            cloud: r.cloud.clone(),
            replica: r.id.clone(),
            requests: AtomicU64::new(0),
            unknown_usage: AtomicU64::new(0),
            input_tokens: AtomicU64::new(0),
            output_tokens: AtomicU64::new(0),
            spend_nano: AtomicU64::new(0),
        }
    }

    fn same_labels(&self, r: &Replica) -> bool {
        self.model == r.model && self.version == r.version && self.cloud == r.cloud
    }
}

/// One row of the ledger, as the admin API and metrics read it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CostRow {
    /// Model group.
    pub model: String,
    /// Version of the group.
    pub version: String,
    /// Cloud id.
    pub cloud: String,
    /// Replica id.
    pub replica: String,
    /// Successful answers metered.
    pub requests: u64,
    /// Of those, answers that reported no usage (not priced).
    pub unknown_usage: u64,
    /// Input (prompt) tokens reported.
    pub input_tokens: u64,
    /// Output (completion) tokens reported.
    pub output_tokens: u64,
    /// Estimated spend, in the unit of the replicas' `cost` prices.
    pub spend: f64,
}

impl Costs {
    /// Where one answer from `replica` is booked.
    pub fn sink(&self, replica: &Replica) -> Arc<dyn UsageSink> {
        // The shard guard of `get` must be gone before `new_row` inserts
        // into the same shard (a match on `get` would hold it: deadlock).
        let existing = self
            .rows
            .get(replica.id.as_str())
            .filter(|c| c.same_labels(replica))
            .map(|c| Arc::clone(&c));
        match existing {
            Some(c) => c,
            None => self.new_row(replica),
        }
    }

    /// A (re)labelled row: rare, at a replica's first answer or after a
    /// reload moved it. The old row's figures are kept under an id that
    /// says which labels they were booked under.
    fn new_row(&self, r: &Replica) -> Arc<Cell> {
        // A row parked earlier under these labels (the replica moves back).
        let parked = self
            .rows
            .remove(&parked_key(&r.id, &r.model, &r.version, &r.cloud));
        let mut fresh = parked.map(|(_, c)| c);
        let mut take = || fresh.take().unwrap_or_else(|| Arc::new(Cell::new(r)));
        let mut moved = None;
        // The entry's shard lock is released at the end of this statement,
        // before any other insert (DashMap locks are not reentrant).
        let cell = match self.rows.entry(r.id.clone()) {
            Entry::Occupied(e) if e.get().same_labels(r) => Arc::clone(e.get()),
            Entry::Occupied(mut e) => {
                let cell = take();
                moved = Some(e.insert(Arc::clone(&cell)));
                cell
            }
            Entry::Vacant(v) => {
                let cell = take();
                v.insert(Arc::clone(&cell));
                cell
            }
        };
        // Another request relabelled first: keep a parked row parked.
        for old in moved.into_iter().chain(fresh) {
            let key = parked_key(&old.replica, &old.model, &old.version, &old.cloud);
            self.rows.insert(key, old);
        }
        cell
    }

    /// Every row, sorted by model, version, cloud and replica: the public
    /// accessor metrics and the admin API read.
    pub fn rows(&self) -> Vec<CostRow> {
        let mut rows: Vec<CostRow> = self
            .rows
            .iter()
            .map(|e| {
                let c = e.value();
                CostRow {
                    model: c.model.clone(),
                    version: c.version.clone(),
                    cloud: c.cloud.clone(),
                    replica: c.replica.clone(),
                    requests: c.requests.load(Ordering::Relaxed),
                    unknown_usage: c.unknown_usage.load(Ordering::Relaxed),
                    input_tokens: c.input_tokens.load(Ordering::Relaxed),
                    output_tokens: c.output_tokens.load(Ordering::Relaxed),
                    spend: c.spend_nano.load(Ordering::Relaxed) as f64 / 1e9,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.model, &a.version, &a.cloud, &a.replica)
                .cmp(&(&b.model, &b.version, &b.cloud, &b.replica))
        });
        rows
    }
}

impl UsageSink for Cell {
    fn book(&self, usage: Option<Usage>, price: &Cost) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let Some(u) = usage else {
            self.unknown_usage.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.input_tokens
            .fetch_add(u.prompt_tokens, Ordering::Relaxed);
        self.output_tokens
            .fetch_add(u.completion_tokens, Ordering::Relaxed);
        // The one pricing rule, shared with tenant budgets.
        self.spend_nano
            .fetch_add(u.cost_nano(price), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(model: &str, cost: &str) -> Replica {
        let yaml = format!(
            "clouds: {{ c: {{ provider: private }} }}\n\
             models: [{{ name: {model}, versions: [{{ name: v1, weight: 100 }}] }}]\n\
             replicas: [{{ id: r, model: {model}, cloud: c, url: \"http://127.0.0.1:1\", cost: {cost} }}]\n"
        );
        switchyard_config::load_str(&yaml, &|_| None)
            .unwrap()
            .replicas
            .remove(0)
    }

    fn book(costs: &Costs, r: &Replica, body: &str) {
        let mut scan = switchyard_proxy::usage::UsageScan::default();
        scan.feed(body.as_bytes());
        costs.sink(r).book(scan.finish(), &r.cost);
    }

    #[test]
    fn usage_is_priced_and_a_moved_replica_gets_a_new_row() {
        let costs = Costs::default();
        let a = replica("chat", "{ input_per_1k: 1.0, output_per_1k: 2.0 }");
        book(
            &costs,
            &a,
            r#"{"usage":{"prompt_tokens":500,"completion_tokens":250}}"#,
        );
        book(&costs, &a, r#"{"choices":[]}"#);
        // A reload moved replica `r` to another group: its old figures stay
        // under the old labels (and this must not deadlock on the map).
        let b = replica("embed", "{ input_per_1k: 0.5, output_per_1k: 0.0 }");
        book(&costs, &b, r#"{"usage":{"prompt_tokens":1000}}"#);
        let rows = costs.rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let chat = rows.iter().find(|r| r.model == "chat").unwrap();
        assert_eq!((chat.requests, chat.unknown_usage), (2, 1));
        assert_eq!((chat.input_tokens, chat.output_tokens), (500, 250));
        assert!((chat.spend - 1.0).abs() < 1e-9, "{chat:?}");
        let embed = rows.iter().find(|r| r.model == "embed").unwrap();
        assert_eq!(embed.replica, "r");
        assert!((embed.spend - 0.5).abs() < 1e-9, "{embed:?}");
        // Back to `chat`: its parked row is resumed, not duplicated.
        book(
            &costs,
            &a,
            r#"{"usage":{"prompt_tokens":500,"completion_tokens":0}}"#,
        );
        let rows = costs.rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let chat = rows.iter().find(|r| r.model == "chat").unwrap();
        assert_eq!((chat.requests, chat.input_tokens), (3, 1000));
    }
}
