//! `GET /admin/costs`: the cost ledger summed per model group, version,
//! cloud and replica.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::costs::CostRow;
use crate::state::Ops;

/// A sum over rows sharing a label.
#[derive(Debug, Default, Serialize)]
struct Total {
    requests: u64,
    unknown_usage: u64,
    input_tokens: u64,
    output_tokens: u64,
    spend: f64,
}

impl Total {
    fn add(&mut self, r: &CostRow) {
        self.requests += r.requests;
        self.unknown_usage += r.unknown_usage;
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        self.spend += r.spend;
    }
}

/// `GET /admin/costs`: totals, then per model group, `group@version`,
/// cloud, and replica.
pub async fn admin(State(gw): State<Arc<Ops>>) -> Response {
    let rows = gw.observer.costs().rows();
    let mut total = Total::default();
    let mut by_model: BTreeMap<&str, Total> = BTreeMap::new();
    let mut by_version: BTreeMap<String, Total> = BTreeMap::new();
    let mut by_cloud: BTreeMap<&str, Total> = BTreeMap::new();
    for r in &rows {
        total.add(r);
        by_model.entry(&r.model).or_default().add(r);
        by_version
            .entry(format!("{}@{}", r.model, r.version))
            .or_default()
            .add(r);
        by_cloud.entry(&r.cloud).or_default().add(r);
    }
    Json(serde_json::json!({
        "note": "estimated from the usage each replica reported, priced with replicas[].cost; unknown_usage answers are not priced",
        "total": total,
        "by_model": by_model,
        "by_version": by_version,
        "by_cloud": by_cloud,
        "by_replica": rows,
    }))
    .into_response()
}
