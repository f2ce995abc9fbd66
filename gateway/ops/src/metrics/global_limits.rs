//! The fleet's shared limits (`global_limits`), read at scrape time:
//! whether Redis is unreachable (the limits then follow their failure
//! mode), how many instances were last seen alive, and leases that failed.
//! Nothing is rendered when the config has no `global_limits`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use switchyard_proxy::tenant_limits::Global;

/// The figures of one scrape.
#[derive(Debug)]
pub(super) struct GlobalLimits {
    degraded: bool,
    live: u32,
    lease_failures: u64,
}

impl GlobalLimits {
    pub(super) fn new(g: &Global) -> Self {
        Self {
            degraded: g.degraded(),
            live: g.live(),
            lease_failures: g.lease_failures(),
        }
    }
}

impl Collector for GlobalLimits {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let m = encoder.encode_descriptor(
            "global_limits_degraded",
            "1 while the fleet's shared limits (Redis) are unreachable and tenants' limits follow their failure mode (open: this instance's share, closed: 503)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(self.degraded)).encode(m)?;
        let m = encoder.encode_descriptor(
            "global_limits_instances",
            "Gateway instances alive in the fleet's shared limits at the last sync (what an open limit is divided by)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(self.live)).encode(m)?;
        let m = encoder.encode_descriptor(
            "global_limits_lease_failures",
            "Leases of a limit's slice that found Redis unreachable",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.lease_failures).encode(m)
    }
}
