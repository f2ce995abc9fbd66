//! API keys managed at run time: create (the key is shown once), list,
//! revoke, rotate. The admin API (`ops/src/admin_keys.rs`) drives it.
//!
//! The store owns the records (metadata and the key's SHA-256, never the
//! key) and the state file they persist in ([`file`]); the data plane sees
//! only the index of keys that may authenticate, published into
//! [`switchyard_proxy::runtime_keys::RuntimeKeys`] after every change.
//!
//! A change is written to the file first (atomically) and published only
//! when that succeeded: an answer of "revoked" means revoked on disk and on
//! the very next request, and a failed write changes nothing. Changes are
//! serialized by one mutex the data plane never takes.
//!
//! Keys belong to tenants defined in the config, by name: a key is created
//! only for a configured tenant, and stops working (without being deleted)
//! while its tenant is absent from the serving config.

mod file;
mod generate;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use switchyard_proxy::Proxy;
use switchyard_proxy::runtime_keys::{KeyIndex, RuntimeKey};

pub use generate::PREFIX;

/// What the store keeps of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Stable id (random, not derived from the key): what revoke and
    /// rotate name.
    pub id: String,
    /// The tenant it authenticates as.
    pub tenant: String,
    /// The operator's label for it (e.g. `ci`), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The key's first characters, to recognise it (`sk-sy-AbC123`).
    pub prefix: String,
    /// `sha256:<hex>` of the key.
    pub hash: String,
    /// Unix milliseconds.
    pub created_at_ms: u64,
    /// When it was revoked (Unix ms); `None`: active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
    /// For a key rotated with a grace period: when it stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// The key this one replaced (rotate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl KeyRecord {
    /// Whether it may authenticate at `now_ms` (tenant aside).
    pub fn active(&self, now_ms: u64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|at| now_ms < at)
    }
}

/// A key just created: its record and the key itself, to show once.
#[derive(Debug)]
pub struct NewKey {
    /// What is kept.
    pub record: KeyRecord,
    /// The key; not kept anywhere.
    pub key: String,
}

/// Why a key operation failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No tenant of that name in the serving config.
    #[error("no tenant `{0}` in the config (keys belong to configured tenants)")]
    UnknownTenant(String),
    /// No key with that id.
    #[error("no key `{0}`")]
    NotFound(String),
    /// The key is revoked already (or expired).
    #[error("key `{0}` is already revoked")]
    Revoked(String),
    /// A field of the request is unusable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The store has no state file, so a key would not survive a restart.
    #[error(
        "runtime keys are not enabled: they need a state file (`switchyard run --config FILE` \
         keeps them in FILE.keys.json, or pass --keys-file)"
    )]
    NoStateFile,
    /// The state file could not be read or written.
    #[error("key state file {}: {reason}", file.display())]
    File {
        /// The state file.
        file: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The system's random number generator failed.
    #[error("cannot generate a key: the system random number generator failed")]
    Random,
}

/// The runtime key store (see the module docs).
pub struct KeyStore {
    proxy: Arc<Proxy>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    file: Option<PathBuf>,
    records: Vec<KeyRecord>,
}

impl KeyStore {
    /// A store with no state file (and so no keys) publishing into `proxy`.
    pub fn new(proxy: Arc<Proxy>) -> Self {
        Self {
            proxy,
            inner: Mutex::default(),
        }
    }

    /// Loads the keys in `path` (none if it does not exist yet) and keeps
    /// every later change there. A file that cannot be read or parsed is an
    /// error naming it: starting without its keys would lock clients out.
    pub fn open(&self, path: &Path, now_ms: u64) -> Result<usize, KeyError> {
        let records = file::load(path)?;
        let mut inner = self.lock();
        inner.file = Some(path.to_path_buf());
        inner.records = records;
        self.publish(&inner.records, now_ms);
        Ok(inner.records.len())
    }

    /// The state file, if any.
    pub fn file(&self) -> Option<PathBuf> {
        self.lock().file.clone()
    }

    /// Every record, oldest first.
    pub fn list(&self) -> Vec<KeyRecord> {
        self.lock().records.clone()
    }

    /// Creates a key for `tenant` (a configured tenant).
    pub fn create(
        &self,
        tenant: &str,
        name: Option<String>,
        now_ms: u64,
    ) -> Result<NewKey, KeyError> {
        let mut inner = self.lock();
        let new = self.plan_create(tenant, name, now_ms)?;
        let records = merged(&inner.records, [new.record.clone()]);
        self.commit(&mut inner, records, now_ms)?;
        Ok(new)
    }

    /// Revokes key `id`: it fails from the next request on.
    pub fn revoke(&self, id: &str, now_ms: u64) -> Result<KeyRecord, KeyError> {
        let mut inner = self.lock();
        let out = plan_revoke(&inner, id, now_ms)?;
        let records = merged(&inner.records, [out.clone()]);
        self.commit(&mut inner, records, now_ms)?;
        Ok(out)
    }

    /// Replaces key `id` with a new one for the same tenant and name. The
    /// old key is revoked now, or with `grace_ms`, keeps working until then
    /// (clients switch over meanwhile). Returns the new key and the old
    /// record.
    pub fn rotate(
        &self,
        id: &str,
        grace_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(NewKey, KeyRecord), KeyError> {
        let mut inner = self.lock();
        let (new, old) = self.plan_rotate(&inner, id, grace_ms, now_ms)?;
        let records = merged(&inner.records, [old.clone(), new.record.clone()]);
        self.commit(&mut inner, records, now_ms)?;
        Ok((new, old))
    }

    /// What `create` would add, without keeping it: the fleet writes the
    /// record to etcd and every instance (this one too) applies it.
    pub fn prepare_create(
        &self,
        tenant: &str,
        name: Option<String>,
        now_ms: u64,
    ) -> Result<NewKey, KeyError> {
        self.plan_create(tenant, name, now_ms)
    }

    /// The record `revoke` would write, without keeping it.
    pub fn prepare_revoke(&self, id: &str, now_ms: u64) -> Result<KeyRecord, KeyError> {
        plan_revoke(&self.lock(), id, now_ms)
    }

    /// The new key and old record `rotate` would write, without keeping them.
    pub fn prepare_rotate(
        &self,
        id: &str,
        grace_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(NewKey, KeyRecord), KeyError> {
        self.plan_rotate(&self.lock(), id, grace_ms, now_ms)
    }

    /// Replaces every record with `records` (as the fleet's etcd holds
    /// them) and publishes them; no file is written.
    pub fn replace(&self, mut records: Vec<KeyRecord>, now_ms: u64) {
        records.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        let mut inner = self.lock();
        self.publish(&records, now_ms);
        inner.records = records;
    }

    fn plan_create(
        &self,
        tenant: &str,
        name: Option<String>,
        now_ms: u64,
    ) -> Result<NewKey, KeyError> {
        self.check_tenant(tenant)?;
        let name = check_name(name)?;
        generate::key(tenant, name, now_ms)
    }

    fn plan_rotate(
        &self,
        inner: &Inner,
        id: &str,
        grace_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(NewKey, KeyRecord), KeyError> {
        let mut records = inner.records.clone();
        let old = find_active(&mut records, id, now_ms)?;
        self.check_tenant(&old.tenant)?;
        match grace_ms.filter(|&g| g > 0) {
            Some(grace) => old.expires_at_ms = Some(now_ms.saturating_add(grace)),
            None => old.revoked_at_ms = Some(now_ms),
        }
        let old = old.clone();
        let mut new = generate::key(&old.tenant, old.name.clone(), now_ms)?;
        new.record.replaces = Some(old.id.clone());
        Ok((new, old))
    }

    fn check_tenant(&self, tenant: &str) -> Result<(), KeyError> {
        let snap = self.proxy.snapshot();
        if snap.config.tenants.iter().any(|t| t.name == tenant) {
            Ok(())
        } else {
            Err(KeyError::UnknownTenant(tenant.to_owned()))
        }
    }

    /// Writes `records`, then makes them the store's and the data plane's.
    fn commit(
        &self,
        inner: &mut Inner,
        records: Vec<KeyRecord>,
        now_ms: u64,
    ) -> Result<(), KeyError> {
        let file = inner.file.as_deref().ok_or(KeyError::NoStateFile)?;
        file::save(file, &records)?;
        self.publish(&records, now_ms);
        inner.records = records;
        Ok(())
    }

    /// The data plane's index: every key active at `now_ms` (a key with a
    /// grace period carries its end; the data plane checks it).
    fn publish(&self, records: &[KeyRecord], now_ms: u64) {
        let index: KeyIndex = records
            .iter()
            .filter(|r| r.active(now_ms))
            .filter_map(|r| {
                let digest = file::parse_hash(&r.hash)?;
                let key = RuntimeKey {
                    id: r.id.clone(),
                    tenant: r.tenant.clone(),
                    expires_at_ms: r.expires_at_ms,
                };
                Some((digest, key))
            })
            .collect();
        self.proxy.runtime_keys().replace(index);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `records` with `changed` put in place of the records with their ids,
/// or appended.
fn merged(records: &[KeyRecord], changed: impl IntoIterator<Item = KeyRecord>) -> Vec<KeyRecord> {
    let mut out = records.to_vec();
    for c in changed {
        match out.iter_mut().find(|r| r.id == c.id) {
            Some(r) => *r = c,
            None => out.push(c),
        }
    }
    out
}

/// The record `id` revoked at `now_ms`.
fn plan_revoke(inner: &Inner, id: &str, now_ms: u64) -> Result<KeyRecord, KeyError> {
    let mut records = inner.records.clone();
    let rec = find_active(&mut records, id, now_ms)?;
    rec.revoked_at_ms = Some(now_ms);
    Ok(rec.clone())
}

/// A key in the format the store generates, kept nowhere: for keys that
/// go into a config (the demo's tenant).
pub fn new_secret() -> Result<String, KeyError> {
    generate::secret()
}

/// The active record `id` in `records`.
fn find_active<'r>(
    records: &'r mut [KeyRecord],
    id: &str,
    now_ms: u64,
) -> Result<&'r mut KeyRecord, KeyError> {
    let rec = records
        .iter_mut()
        .find(|r| r.id == id)
        .ok_or_else(|| KeyError::NotFound(id.to_owned()))?;
    if !rec.active(now_ms) {
        return Err(KeyError::Revoked(id.to_owned()));
    }
    Ok(rec)
}

/// A label: printable, short, or none.
fn check_name(name: Option<String>) -> Result<Option<String>, KeyError> {
    let Some(name) = name.map(|n| n.trim().to_owned()) else {
        return Ok(None);
    };
    if name.is_empty() {
        return Ok(None);
    }
    if name.len() > 100 || name.chars().any(char::is_control) {
        return Err(KeyError::Invalid {
            field: "name",
            reason: "must be at most 100 printable characters".into(),
        });
    }
    Ok(Some(name))
}

#[cfg(test)]
mod tests;
