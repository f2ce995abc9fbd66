//! API keys created at run time (the admin API's `/admin/keys`), next to
//! the config's own: an index of key hashes swapped as one value.
//!
//! The control plane's key store owns the records and the state file and
//! publishes the keys that may authenticate here with [`RuntimeKeys::replace`]
//! (one `ArcSwap` store: a revoked key fails on the very next request).
//! The data plane reads it only when the config's index misses, so a
//! config key costs nothing more, and a gateway with no runtime keys pays
//! one atomic load on the 401 path.
//!
//! An entry names its tenant, not a position in the config: a key belongs
//! to the tenant of that name in whichever generation serves the request,
//! and stops working when the tenant is removed from the config.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use switchyard_config::{Config, Quota, Tenant, TenantKey};

/// One key that may authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeKey {
    /// The key's id (never the key), for logs.
    pub id: String,
    /// Name of the tenant it belongs to.
    pub tenant: String,
    /// Unix milliseconds after which it no longer works (a key rotated
    /// with a grace period); `None`: until revoked.
    pub expires_at_ms: Option<u64>,
}

/// Key hash -> key.
pub type KeyIndex = HashMap<[u8; 32], RuntimeKey>;

/// A published key, with the [`TenantKey`] a request carries built once
/// here rather than per request (its id, and no limits of its own: a
/// runtime key is limited by its tenant's).
struct Published {
    key: RuntimeKey,
    as_key: Arc<TenantKey>,
}

/// The runtime keys' index, shared by every request and generation.
#[derive(Default)]
pub struct RuntimeKeys {
    index: ArcSwap<HashMap<[u8; 32], Published>>,
}

impl RuntimeKeys {
    /// Publishes `index`: requests from now on see exactly these keys.
    pub fn replace(&self, index: KeyIndex) {
        let published = index
            .into_iter()
            .map(|(digest, key)| {
                let as_key = Arc::new(TenantKey {
                    id: key.id.clone(),
                    sha256: digest,
                    requests_per_minute: None,
                    quota: Quota::default(),
                });
                (digest, Published { key, as_key })
            })
            .collect();
        self.index.store(Arc::new(published));
    }

    /// Whether `tenant` has a published key named `id` (for scrape-time
    /// series: a walk over the index, off the request path).
    pub fn has(&self, tenant: &str, id: &str) -> bool {
        self.index
            .load()
            .values()
            .any(|p| p.key.tenant == tenant && p.key.id == id)
    }

    /// How many keys may authenticate.
    pub fn len(&self) -> usize {
        self.index.load().len()
    }

    /// Whether no runtime key may authenticate.
    pub fn is_empty(&self) -> bool {
        self.index.load().is_empty()
    }

    /// The tenant of `config` whose runtime key hashes to `digest`, if the
    /// key exists, has not expired by `now_ms()` (asked only for a key that
    /// expires) and its tenant is still configured.
    pub fn tenant<'c>(
        &self,
        config: &'c Config,
        digest: &[u8; 32],
        now_ms: impl FnOnce() -> u64,
    ) -> Option<(&'c Tenant, Arc<TenantKey>)> {
        let index = self.index.load();
        let (stored, published) = index.get_key_value(digest)?;
        let key = &published.key;
        if !ct_eq(stored, digest) {
            return None;
        }
        if key.expires_at_ms.is_some_and(|at| now_ms() >= at) {
            return None;
        }
        let tenant = config.tenants.iter().find(|t| t.name == key.tenant)?;
        Some((tenant, Arc::clone(&published.as_key)))
    }
}

/// Whether two digests are equal, compared in constant time (for the
/// config's index too: `auth.rs` uses it).
pub(crate) fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_config::key_digest;

    fn config(tenants: &str) -> Config {
        let yaml = format!(
            "clouds: {{ c: {{ provider: private }} }}\n\
             models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]\n\
             replicas: [{{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }}]\n\
             tenants: {tenants}\n"
        );
        switchyard_config::load_str(&yaml, &|_| None).unwrap()
    }

    fn key(tenant: &str, expires_at_ms: Option<u64>) -> RuntimeKey {
        RuntimeKey {
            id: "k1".into(),
            tenant: tenant.into(),
            expires_at_ms,
        }
    }

    #[test]
    fn a_key_finds_its_tenant_by_name_until_replaced() {
        let c = config("[{ name: a, keys: [{ id: x, key: cfg }] }]");
        let keys = RuntimeKeys::default();
        let d = key_digest(b"sk-sy-one");
        assert!(keys.tenant(&c, &d, || 0).is_none());
        keys.replace(HashMap::from([(d, key("a", None))]));
        assert_eq!(keys.tenant(&c, &d, || 0).unwrap().0.name, "a");
        assert!(keys.tenant(&c, &key_digest(b"other"), || 0).is_none());
        keys.replace(KeyIndex::new());
        assert!(keys.tenant(&c, &d, || 0).is_none(), "revoked at once");
    }

    #[test]
    fn an_expiring_key_works_until_its_time_and_a_removed_tenant_ends_it() {
        let c = config("[{ name: a, keys: [{ id: x, key: cfg }] }]");
        let keys = RuntimeKeys::default();
        let d = key_digest(b"sk-sy-two");
        keys.replace(HashMap::from([(d, key("a", Some(1_000)))]));
        assert!(keys.tenant(&c, &d, || 999).is_some());
        assert!(keys.tenant(&c, &d, || 1_000).is_none());
        keys.replace(HashMap::from([(d, key("gone", None))]));
        assert!(keys.tenant(&c, &d, || 0).is_none());
    }
}
