//! `GET /admin/costs`: the cost ledger summed per model group, version,
//! cloud and replica, and the spend of each tenant and key (the data
//! plane's own accounts, which its budgets are checked against).

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
        "by_tenant": by_tenant(&gw),
        "global_limits": gw.proxy.tenant_limits().global().map(|g| serde_json::json!({
            "degraded": g.degraded(),
            "instances": g.live(),
            "lease_failures": g.lease_failures(),
        })),
    }))
    .into_response()
}

/// Each tenant's figures and budgets, with its keys' under `by_key`;
/// tenants the serving config no longer has are kept (their history).
fn by_tenant(gw: &Ops) -> serde_json::Map<String, serde_json::Value> {
    let snap = gw.proxy.snapshot();
    let mut out = serde_json::Map::new();
    for row in gw.proxy.tenant_limits().figures() {
        let tenant = snap.config.tenants.iter().find(|t| t.name == row.tenant);
        let mut v = serde_json::to_value(&row.figures).unwrap_or_default();
        match &row.key {
            None => {
                if let (Some(t), Some(o)) = (tenant, v.as_object_mut()) {
                    o.insert("limits".into(), limits(t.requests_per_minute, &t.quota));
                    o.insert("by_key".into(), serde_json::json!({}));
                }
                out.insert(row.tenant.clone(), v);
            }
            Some(key) => {
                let k = tenant.and_then(|t| t.keys.iter().find(|k| k.id == *key));
                if let (Some(k), Some(o)) = (k, v.as_object_mut()) {
                    o.insert("limits".into(), limits(k.requests_per_minute, &k.quota));
                }
                if let Some(keys) = out
                    .get_mut(&row.tenant)
                    .and_then(|t| t.get_mut("by_key"))
                    .and_then(|k| k.as_object_mut())
                {
                    keys.insert(key.clone(), v);
                }
            }
        }
    }
    out
}

fn limits(rpm: Option<u32>, q: &switchyard_config::Quota) -> serde_json::Value {
    serde_json::json!({
        "requests_per_minute": rpm,
        "tokens_per_minute": q.tokens_per_minute,
        "daily_budget_usd": q.daily_budget_usd,
        "monthly_budget_usd": q.monthly_budget_usd,
    })
}
