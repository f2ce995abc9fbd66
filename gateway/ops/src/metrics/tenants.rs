//! Spend and usage per tenant and key, read at scrape time from the data
//! plane's accounts. Labels are `tenant` (a name from the config) and
//! `key` (a key id, never the key): only tenants of the serving config and
//! their keys that can authenticate now (the config's, and live ones
//! created at run time) are rendered, so the series are bounded by the
//! config and the live key store; a removed or revoked key's history stays
//! in `GET /admin/costs`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use switchyard_config::Config;
use switchyard_proxy::runtime_keys::RuntimeKeys;
use switchyard_proxy::tenant_limits::SpendRow;

/// The key rows (one per tenant key that has served) of the config's tenants.
#[derive(Debug)]
pub(super) struct TenantSpend {
    rows: Vec<SpendRow>,
}

impl TenantSpend {
    pub(super) fn new(config: &Config, runtime: &RuntimeKeys, rows: Vec<SpendRow>) -> Self {
        let rows = rows
            .into_iter()
            .filter(|r| {
                let Some(key) = &r.key else { return false };
                config
                    .tenants
                    .iter()
                    .any(|t| t.name == r.tenant && t.keys.iter().any(|k| k.id == *key))
                    || (config.tenants.iter().any(|t| t.name == r.tenant)
                        && runtime.has(&r.tenant, key))
            })
            .collect();
        Self { rows }
    }
}

impl Collector for TenantSpend {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let labels = |r: &SpendRow| {
            [
                ("tenant", r.tenant.clone()),
                ("key", r.key.clone().unwrap_or_default()),
            ]
        };
        let mut m = encoder.encode_descriptor(
            "tenant_spend",
            "Spend of a tenant's key from reported token usage, priced by the serving replica's cost (config currency); answers without usage count their reservation",
            None,
            MetricType::Counter,
        )?;
        for r in &self.rows {
            ConstCounter::new(r.figures.spend).encode(m.encode_family(&labels(r))?)?;
        }
        let mut m = encoder.encode_descriptor(
            "tenant_spend_today",
            "Spend of a tenant's key in the current UTC day (what daily_budget_usd is checked against)",
            None,
            MetricType::Gauge,
        )?;
        for r in &self.rows {
            ConstGauge::new(r.figures.spend_today).encode(m.encode_family(&labels(r))?)?;
        }
        let mut m = encoder.encode_descriptor(
            "tenant_requests",
            "Answers served to a tenant's key and booked",
            None,
            MetricType::Counter,
        )?;
        for r in &self.rows {
            ConstCounter::new(r.figures.requests).encode(m.encode_family(&labels(r))?)?;
        }
        let mut m = encoder.encode_descriptor(
            "tenant_tokens",
            "Tokens reported for a tenant's key, by direction",
            None,
            MetricType::Counter,
        )?;
        for r in &self.rows {
            let f = &r.figures;
            for (direction, n) in [("input", f.input_tokens), ("output", f.output_tokens)] {
                let [a, b] = labels(r);
                let l = [a, b, ("direction", direction.to_owned())];
                ConstCounter::new(n).encode(m.encode_family(&l)?)?;
            }
        }
        Ok(())
    }
}
