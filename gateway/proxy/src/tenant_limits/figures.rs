//! Every account's figures, for `/admin/costs` and `/metrics`.

use super::{AccountFigures, TenantLimits};

/// One row of [`TenantLimits::figures`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpendRow {
    /// Tenant name.
    pub tenant: String,
    /// Key id; `None` for the tenant's own (all keys) row.
    pub key: Option<String>,
    /// Its figures.
    pub figures: AccountFigures,
}

impl TenantLimits {
    /// Every tenant's and key's figures, sorted by tenant then key (the
    /// tenant's own row first).
    pub fn figures(&self) -> Vec<SpendRow> {
        let mut rows = Vec::new();
        for e in &self.by_tenant {
            rows.push(SpendRow {
                tenant: e.key().clone(),
                key: None,
                figures: e.account.figures(),
            });
            for k in &e.keys {
                rows.push(SpendRow {
                    tenant: e.key().clone(),
                    key: Some(k.key().clone()),
                    figures: k.figures(),
                });
            }
        }
        rows.sort_by(|a, b| (&a.tenant, &a.key).cmp(&(&b.tenant, &b.key)));
        rows
    }
}
