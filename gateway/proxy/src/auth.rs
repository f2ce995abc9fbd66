//! Client authentication: which tenant a request comes from, what it may
//! call, and how high a priority it gets. Called by `handle.rs` right after
//! classify; does nothing (one `is_empty` check) when no tenants are
//! configured.
//!
//! A key is accepted as `Authorization: Bearer <key>` (scheme in any
//! case), `x-api-key` or `api-key`. It is never compared as text: its
//! SHA-256 is looked up in the config's index of key hashes, then the
//! digests are compared in constant time, so the work per request is one
//! hash of a short string and a map lookup. Only when the config's index
//! misses are the keys created at run time asked ([`RuntimeKeys`]): one
//! more map lookup, on that path alone. A bearer token shaped like a JWT
//! goes to [`crate::jwt`] instead when `auth.jwt` issuers are configured.

use std::ops::Deref;
use std::sync::Arc;

use http::HeaderMap;
use http::header;
use switchyard_config::{Config, MaxPriority, Tenant, TenantKey, key_digest};

use crate::admission::Priority;
use crate::error::ProxyError;
use crate::jwt::{JwtAuth, JwtError, looks_like_jwt};
use crate::runtime_keys::{RuntimeKeys, ct_eq};

/// Who is calling: a tenant, or nobody when none are configured (or the
/// request has no key and `server.allow_unauthenticated` is set).
pub type Caller<'c> = Option<&'c Tenant>;

/// The key a caller presented: one of the config's, or one created at
/// run time (shared with the runtime index, so finding it copies nothing).
/// Either way it carries the key's id and its own limits (a runtime key
/// has none beyond its tenant's).
pub enum KeyRef<'c> {
    /// `tenants[i].keys[j]` of the serving config.
    Config(&'c TenantKey),
    /// A key from `/admin/keys`.
    Runtime(Arc<TenantKey>),
    /// A credential that is not a key: a verified JWT (key `jwt`) or a
    /// client certificate (key `client_cert`). All of a tenant's callers of
    /// that kind share one account (per-subject accounts would grow with
    /// every subject an issuer or CA mints), limited by the tenant's limits.
    Shared(&'c TenantKey),
}

impl Deref for KeyRef<'_> {
    type Target = TenantKey;
    fn deref(&self) -> &TenantKey {
        match self {
            KeyRef::Config(k) | KeyRef::Shared(k) => k,
            KeyRef::Runtime(k) => k,
        }
    }
}

/// The tenant whose key or token `headers` present (a config key, else a
/// runtime key of `runtime`, or a JWT of `jwt`'s issuers); 401 for a
/// missing or unknown key (or a token that fails a check) when tenants are
/// configured, 403 for a valid token naming no tenant.
pub fn authenticate<'c>(
    config: &'c Config,
    runtime: &RuntimeKeys,
    jwt: Option<&'c JwtAuth>,
    headers: &HeaderMap,
) -> Result<Caller<'c>, ProxyError> {
    Ok(identify(config, runtime, jwt, headers)?.map(|(tenant, _)| tenant))
}

/// [`authenticate`], with the key that matched (its limits and its id for
/// spend and logs).
pub fn identify<'c>(
    config: &'c Config,
    runtime: &RuntimeKeys,
    jwt: Option<&'c JwtAuth>,
    headers: &HeaderMap,
) -> Result<Option<(&'c Tenant, KeyRef<'c>)>, ProxyError> {
    if config.tenants.is_empty() {
        return Ok(None);
    }
    let Some(key) = presented_key(headers) else {
        if config.server.allow_unauthenticated {
            return Ok(None);
        }
        return Err(ProxyError::Unauthorized {
            message:
                "missing API key: send `Authorization: Bearer <key>`, `x-api-key` or `api-key`"
                    .into(),
        });
    };
    if let Some(jwt) = jwt
        && looks_like_jwt(key)
    {
        return token_identity(config, jwt, key);
    }
    let digest = key_digest(key);
    let found = config
        .key_index
        .get_key_value(&digest)
        .and_then(|(stored, &(t, k))| {
            let tenant = config.tenants.get(t)?;
            let key = tenant.keys.get(k)?;
            ct_eq(stored, &digest).then_some((tenant, KeyRef::Config(key)))
        })
        .or_else(|| {
            runtime
                .tenant(config, &digest, wall_ms)
                .map(|(tenant, key)| (tenant, KeyRef::Runtime(key)))
        });
    match found {
        Some(found) => Ok(Some(found)),
        None => Err(ProxyError::Unauthorized {
            message: "invalid API key".into(),
        }),
    }
}

/// Now, in Unix milliseconds: asked only for a runtime key that expires.
#[allow(
    clippy::disallowed_methods,
    reason = "a rotated key's end is a wall-clock time: persisted, shown to operators, kept across restarts"
)]
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The tenant a JWT names, once every check passed.
fn token_identity<'c>(
    config: &'c Config,
    jwt: &'c JwtAuth,
    token: &[u8],
) -> Result<Option<(&'c Tenant, KeyRef<'c>)>, ProxyError> {
    let now = crate::jwt::unix_now();
    // `looks_like_jwt` admitted only ASCII.
    let token = std::str::from_utf8(token).unwrap_or_default();
    match jwt.verify(token, now) {
        Ok(i) => Ok(config
            .tenants
            .get(i)
            .map(|t| (t, KeyRef::Shared(jwt.token_key())))),
        Err(e @ JwtError::UnknownTenant(_)) => Err(ProxyError::UnknownTenant {
            message: e.to_string(),
        }),
        Err(e) => Err(ProxyError::Unauthorized {
            message: format!("invalid token: {e}"),
        }),
    }
}

/// 403 when the caller's tenant may not call group `model`.
pub fn authorize_model(caller: Caller<'_>, model: &str) -> Result<(), ProxyError> {
    match caller {
        Some(t) if !t.may_call(model) => Err(ProxyError::ModelNotAllowed {
            tenant: t.name.clone(),
            model: model.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The priority served: what was asked, but no higher than the tenant's
/// `max_priority`.
pub fn ceiling(asked: Priority, caller: Caller<'_>) -> Priority {
    let max = match caller.map(|t| t.max_priority) {
        None | Some(MaxPriority::High) => Priority::High,
        Some(MaxPriority::Normal) => Priority::Normal,
        Some(MaxPriority::Low) => Priority::Low,
    };
    // `High` orders first: the served priority is the lower of the two.
    asked.max(max)
}

/// Whether `headers` carry an API key (in any of the three headers).
pub(crate) fn presents_key(headers: &HeaderMap) -> bool {
    presented_key(headers).is_some()
}

/// The key in `Authorization: Bearer`, `x-api-key` or `api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.as_bytes();
        if let Some((scheme, rest)) = v.split_at_checked(7)
            && scheme.eq_ignore_ascii_case(b"bearer ")
        {
            let key = rest.trim_ascii();
            return (!key.is_empty()).then_some(key);
        }
        return None;
    }
    ["x-api-key", "api-key"]
        .iter()
        .find_map(|h| headers.get(*h))
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let yaml = format!(
            "{extra}clouds: {{ c: {{ provider: private }} }}\n\
             models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}, {{ name: n, versions: [{{ name: v1, weight: 100 }}] }}]\n\
             replicas: [{{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }}, {{ id: s, model: n, cloud: c, url: \"http://127.0.0.1:1\" }}]\n\
             tenants:\n  - {{ name: a, keys: [{{ id: k, key: sekrit }}], models: [m], max_priority: normal }}\n"
        );
        switchyard_config::load_str(&yaml, &|_| None).unwrap()
    }

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn keys_in_any_of_three_headers_and_the_scheme_in_any_case() {
        let none = RuntimeKeys::default();
        let c = config("");
        for (name, value) in [
            ("authorization", "Bearer sekrit"),
            ("authorization", "bearer sekrit"),
            ("x-api-key", "sekrit"),
            ("api-key", "sekrit"),
        ] {
            let t = authenticate(&c, &none, None, &with(name, value)).unwrap();
            assert_eq!(t.unwrap().name, "a", "{name}: {value}");
        }
        for h in [
            HeaderMap::new(),
            with("authorization", "Bearer nope"),
            with("authorization", "Basic sekrit"),
        ] {
            let e = authenticate(&c, &none, None, &h).unwrap_err();
            assert_eq!(e.status(), 401);
        }
        let open = config("server: { allow_unauthenticated: true }\n");
        assert!(
            authenticate(&open, &none, None, &HeaderMap::new())
                .unwrap()
                .is_none()
        );
        assert_eq!(
            authenticate(&open, &none, None, &with("x-api-key", "nope"))
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn models_and_priority_are_bounded_by_the_tenant() {
        let none = RuntimeKeys::default();
        let c = config("");
        let t = authenticate(&c, &none, None, &with("x-api-key", "sekrit")).unwrap();
        assert!(authorize_model(t, "m").is_ok());
        assert_eq!(authorize_model(t, "n").unwrap_err().status(), 403);
        assert_eq!(ceiling(Priority::High, t), Priority::Normal);
        assert_eq!(ceiling(Priority::Low, t), Priority::Low);
        assert_eq!(ceiling(Priority::High, None), Priority::High);
    }
}
