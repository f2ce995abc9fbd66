//! The names of the fleet's counters in Redis, all under one prefix:
//!
//! - `{p}:rpm|tpm:{tenant}:{key or *}:{minute}`: what the fleet granted
//!   in that minute (expires after two);
//! - `{p}:conc:{tenant}`: a hash, instance id -> concurrency slots held;
//! - `{p}:instances`: a sorted set, instance id -> lease expiry (ms);
//! - `{p}:spend:day|month:{tenant}:{key or *}:{day or month}`: spend in
//!   billionths of the price unit (expires after the window, with margin).

use switchyard_proxy::tenant_limits::Kind;

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// A per-minute limit's counter, or a tenant's concurrency hash.
    pub(super) fn limit(&self, kind: Kind, tenant: &str, key: Option<&str>, window: u64) -> String {
        match kind {
            Kind::Concurrency => format!("{}:conc:{tenant}", self.prefix),
            _ => format!(
                "{}:{}:{tenant}:{}:{window}",
                self.prefix,
                kind.as_str(),
                key.unwrap_or("*")
            ),
        }
    }

    pub(super) fn instances(&self) -> String {
        format!("{}:instances", self.prefix)
    }

    pub(super) fn spend(
        &self,
        period: &str,
        tenant: &str,
        key: Option<&str>,
        window: u32,
    ) -> String {
        format!(
            "{}:spend:{period}:{tenant}:{}:{window}",
            self.prefix,
            key.unwrap_or("*")
        )
    }
}

/// A window counter outlives its minute by one (a late settle still
/// finds it).
pub(super) const WINDOW_TTL_S: u64 = 120;

/// Spend counters outlive their day (3 days) or month (40 days).
pub(super) fn spend_ttl_s(period: &str) -> u64 {
    if period == "day" {
        3 * 86_400
    } else {
        40 * 86_400
    }
}
