//! `tenants:` clients and their API keys (kept only as SHA-256 hashes),
//! and the rule that a data plane listening beyond loopback needs them.

use std::collections::{BTreeMap, HashMap};

use super::Validator;
use crate::defaults::DEFAULT_MAX_TOKENS;
use crate::model::{
    Cloud, MaxPriority, ModelGroup, Quota, ServerConfig, Tenant, TenantKey, key_digest,
};
use crate::raw::{RawTenant, RawTenantKey};
use crate::secret::{check_header_value, header_value_from_file_contents};

/// Key hash -> (tenant index, key index).
type KeyIndex = HashMap<[u8; 32], (usize, usize)>;

impl Validator<'_> {
    pub(super) fn tenants(
        &mut self,
        raw: Vec<RawTenant>,
        models: &[ModelGroup],
        clouds: &BTreeMap<String, Cloud>,
        keyless_ok: bool,
    ) -> (Vec<Tenant>, KeyIndex) {
        let mut tenants = Vec::new();
        let mut index = KeyIndex::new();
        for (i, t) in raw.into_iter().enumerate() {
            let path = format!("tenants[{i}]");
            if t.name.trim().is_empty() {
                self.err(format!("{path}.name"), "must not be empty");
            } else if tenants.iter().any(|o: &Tenant| o.name == t.name) {
                self.err(
                    format!("{path}.name"),
                    format!("duplicate tenant `{}`", t.name),
                );
            }
            if t.keys.is_empty() && t.client_cert_names.is_empty() && !keyless_ok {
                self.err(
                    format!("{path}.keys"),
                    "at least one key is required (or client_cert_names, or an `auth.jwt` issuer)",
                );
            }
            let client_cert_names = self.cert_names(&path, t.client_cert_names, &tenants);
            let mut keys = Vec::new();
            for (j, k) in t.keys.into_iter().enumerate() {
                let kpath = format!("{path}.keys[{j}]");
                let Some(key) = self.tenant_key(&kpath, k) else {
                    continue;
                };
                if index
                    .insert(key.sha256, (tenants.len(), keys.len()))
                    .is_some()
                {
                    self.err(kpath, "the same key is configured twice");
                    continue;
                }
                keys.push(key);
            }
            let allowed = t.models.unwrap_or_default();
            for (j, m) in allowed.iter().enumerate() {
                let known = match m.rsplit_once('@') {
                    Some((g, v)) => models
                        .iter()
                        .any(|grp| grp.name == g && grp.versions.iter().any(|x| x.name == v)),
                    None => models.iter().any(|g| g.name == *m),
                };
                if !known {
                    let what = if m.contains('@') {
                        "model version"
                    } else {
                        "model group"
                    };
                    self.err(
                        format!("{path}.models[{j}]"),
                        format!("unknown {what} `{m}`"),
                    );
                }
            }
            let tenant_clouds = t.clouds.unwrap_or_default();
            for (j, c) in tenant_clouds.iter().enumerate() {
                let known = clouds
                    .values()
                    .any(|cl| cl.id == *c || cl.provider.as_str() == c);
                if !known {
                    self.err(
                        format!("{path}.clouds[{j}]"),
                        format!("`{c}` is neither a cloud id under `clouds` nor a provider in use"),
                    );
                }
            }
            let max_priority = match t.max_priority.as_deref() {
                None | Some("high") => MaxPriority::High,
                Some("normal") => MaxPriority::Normal,
                Some("low") => MaxPriority::Low,
                Some(other) => {
                    self.err(
                        format!("{path}.max_priority"),
                        format!("`{other}` is not a priority (high, normal or low)"),
                    );
                    MaxPriority::High
                }
            };
            let requests_per_minute = self
                .int(
                    &path,
                    "requests_per_minute",
                    t.requests_per_minute,
                    1,
                    100_000_000,
                )
                .map(|n| n as u32);
            let concurrency = self
                .int(&path, "concurrency", t.concurrency, 1, 10_000_000)
                .map(|n| n as u32);
            let quota = self.quota(
                &path,
                t.tokens_per_minute,
                t.daily_budget_usd,
                t.monthly_budget_usd,
            );
            let default_max_tokens = self
                .int(
                    &path,
                    "default_max_tokens",
                    t.default_max_tokens,
                    1,
                    10_000_000,
                )
                .map_or(DEFAULT_MAX_TOKENS, |n| n as u32);
            let on_redis_unavailable = self.fail_mode(
                &format!("{path}.on_redis_unavailable"),
                t.on_redis_unavailable,
            );
            tenants.push(Tenant {
                name: t.name,
                keys,
                models: allowed,
                max_priority,
                requests_per_minute,
                concurrency,
                quota,
                default_max_tokens,
                client_cert_names,
                clouds: tenant_clouds,
                on_redis_unavailable,
            });
        }
        (tenants, index)
    }

    fn tenant_key(&mut self, path: &str, k: RawTenantKey) -> Option<TenantKey> {
        if k.id.trim().is_empty() {
            self.err(format!("{path}.id"), "must not be empty");
        }
        let sha256 = match (k.hash, k.key, k.key_file) {
            (Some(hash), None, None) => parse_hash(&hash).or_else(|| {
                self.err(
                    format!("{path}.hash"),
                    "must be `sha256:` and 64 hex digits (e.g. from `printf %s \"$KEY\" | sha256sum`)",
                );
                None
            })?,
            (None, Some(key), None) => match check_header_value(&key) {
                Ok(()) => key_digest(key.as_bytes()),
                Err(why) => {
                    self.err(format!("{path}.key"), format!("the key {why}"));
                    return None;
                }
            },
            (None, None, Some(file)) => {
                let text = match std::fs::read_to_string(&file) {
                    Ok(t) => t,
                    Err(e) => {
                        self.err(format!("{path}.key_file"), format!("cannot read {file}: {e}"));
                        return None;
                    }
                };
                match header_value_from_file_contents(&text) {
                    Ok(key) => key_digest(key.as_bytes()),
                    Err(why) => {
                        self.err(format!("{path}.key_file"), format!("the key in {file} {why}"));
                        return None;
                    }
                }
            }
            _ => {
                self.err(path, "needs exactly one of hash, key, key_file");
                return None;
            }
        };
        let requests_per_minute = self
            .int(
                path,
                "requests_per_minute",
                k.requests_per_minute,
                1,
                100_000_000,
            )
            .map(|n| n as u32);
        let quota = self.quota(
            path,
            k.tokens_per_minute,
            k.daily_budget_usd,
            k.monthly_budget_usd,
        );
        Some(TenantKey {
            id: k.id,
            sha256,
            requests_per_minute,
            quota,
        })
    }

    /// Tokens per minute and the two budgets, of a tenant or a key.
    fn quota(
        &mut self,
        path: &str,
        tokens_per_minute: Option<i64>,
        daily: Option<f64>,
        monthly: Option<f64>,
    ) -> Quota {
        let tokens_per_minute = self
            .int(
                path,
                "tokens_per_minute",
                tokens_per_minute,
                1,
                1_000_000_000,
            )
            .map(|n| n as u32);
        let mut usd = |field: &str, v: Option<f64>| {
            let v = v?;
            // Spend is counted in nano-units in a u64: 1e9 USD is far inside it.
            if v.is_finite() && (0.0..=1e9).contains(&v) {
                Some(v)
            } else {
                self.err(
                    format!("{path}.{field}"),
                    format!("must be 0..=1000000000 (USD), got {v}"),
                );
                None
            }
        };
        Quota {
            tokens_per_minute,
            daily_budget_usd: usd("daily_budget_usd", daily),
            monthly_budget_usd: usd("monthly_budget_usd", monthly),
        }
    }

    /// `tenants[i].client_cert_names`: non-empty, each name one tenant's.
    fn cert_names(&mut self, path: &str, names: Vec<String>, earlier: &[Tenant]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (j, name) in names.into_iter().enumerate() {
            let field = format!("{path}.client_cert_names[{j}]");
            if name.trim().is_empty() {
                self.err(field, "must not be empty");
            } else if let Some(o) = earlier.iter().find(|o| o.client_cert_names.contains(&name)) {
                self.err(field, format!("`{name}` is already tenant `{}`'s", o.name));
            } else if out.contains(&name) {
                self.err(field, format!("duplicate name `{name}`"));
            } else {
                out.push(name);
            }
        }
        out
    }

    /// A data plane reachable beyond loopback serves only clients with a
    /// key, unless the operator says otherwise.
    pub(super) fn client_auth(&mut self, server: &ServerConfig, tenants: &[Tenant]) {
        let verifies = server.tls.as_ref().is_some_and(|t| t.client.is_some());
        if !verifies && let Some(i) = tenants.iter().position(|t| !t.client_cert_names.is_empty()) {
            self.err(
                format!("tenants[{i}].client_cert_names"),
                "needs server.tls.client_ca_file (client certificates are verified against it)",
            );
        }
        let mtls_required = server
            .tls
            .as_ref()
            .and_then(|t| t.client.as_ref())
            .is_some_and(|c| c.client_auth == crate::model::ClientAuth::Required);
        if tenants.is_empty()
            && !mtls_required
            && !server.listen.ip().is_loopback()
            && !server.allow_unauthenticated
        {
            self.err(
                "server.listen",
                format!(
                    "{} is not a loopback address and no client authentication is configured: \
                     add `tenants` with API keys, or set server.allow_unauthenticated: true",
                    server.listen
                ),
            );
        }
    }
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
