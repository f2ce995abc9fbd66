//! JWT/OIDC client authentication: a bearer token signed by a configured
//! issuer (`auth.jwt`) names a tenant, as an alternative to an API key.
//!
//! [`JwtAuth`] is one config generation's verifier, held by the
//! [`Snapshot`](crate::Snapshot) (absent when no issuer is configured, so
//! API-key-only gateways do no JWT work at all). The request path never
//! waits on the network: it verifies against the issuer's cached keys
//! ([`keys::KeyStore`]); a token naming an unknown `kid` gets 401 "unknown
//! key id" and wakes the fetcher (`control/src/jwks.rs`), rate limited, so
//! a key the IdP just rotated in works a moment later. A token seen before
//! costs a map lookup ([`cache`]).
//!
//! # Layout
//! - `verify.rs`: one token's checks, in order; [`JwtError`] says which failed.
//! - [`keys`]: an issuer's key set and its fetch schedule.
//! - [`cache`]: verified tokens, bounded.
//! - [`ring_provider`]: jsonwebtoken's crypto on `ring`.

pub mod cache;
pub mod keys;
pub mod ring_provider;
#[cfg(test)]
pub(crate) mod test_signer;
mod verify;

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use switchyard_config::jwt::JwtIssuer;
use switchyard_config::{Config, Quota, TenantKey};
use tokio::sync::Notify;

use self::cache::TokenCache;
use self::keys::KeyStore;
pub use self::verify::JwtError;

/// One config generation's token verifier.
#[derive(Debug)]
pub struct JwtAuth {
    issuers: Vec<Issuer>,
    /// Tenant name -> index in `config.tenants`.
    tenants: HashMap<String, usize>,
    cache: TokenCache,
    /// Wakes the JWKS fetcher (a `kid` was missed); shared across generations.
    wake: Arc<Notify>,
    /// The key every verified token is accounted under (`jwt`, no limits
    /// of its own): tenants' limits and spend apply to token callers too.
    token_key: TenantKey,
}

#[derive(Debug)]
struct Issuer {
    config: JwtIssuer,
    store: Arc<KeyStore>,
    /// One `Validation` per accepted algorithm: jsonwebtoken wants every
    /// algorithm of a `Validation` in the key's family.
    validations: Vec<(Algorithm, Validation)>,
}

impl JwtAuth {
    /// The key verified tokens are accounted under.
    pub fn token_key(&self) -> &TenantKey {
        &self.token_key
    }

    /// The verifier for `config`, or `None` without `auth.jwt`. Key stores
    /// whose source is unchanged are taken over from `previous`, so a
    /// reload neither forgets fetched keys nor fetches again.
    pub fn prepare(config: &Config, previous: Option<&JwtAuth>) -> Option<JwtAuth> {
        if config.auth.jwt.is_empty() {
            return None;
        }
        ring_provider::install();
        let issuers = config
            .auth
            .jwt
            .iter()
            .map(|i| {
                let kept = previous
                    .into_iter()
                    .flat_map(|p| &p.issuers)
                    .find(|p| p.store.serves(i))
                    .map(|p| Arc::clone(&p.store));
                Issuer {
                    config: i.clone(),
                    store: kept.unwrap_or_else(|| Arc::new(KeyStore::new(i))),
                    validations: validations(i),
                }
            })
            .collect();
        let tenants = config
            .tenants
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Some(JwtAuth {
            token_key: TenantKey {
                id: "jwt".into(),
                sha256: [0; 32],
                requests_per_minute: None,
                quota: Quota::default(),
            },
            issuers,
            tenants,
            cache: TokenCache::default(),
            wake: previous.map_or_else(Arc::default, |p| Arc::clone(&p.wake)),
        })
    }

    /// Each issuer with its key store (what the fetcher walks).
    pub fn issuers(&self) -> impl Iterator<Item = (&JwtIssuer, &Arc<KeyStore>)> {
        self.issuers.iter().map(|i| (&i.config, &i.store))
    }

    /// Notified when a request missed a `kid`.
    pub fn wake(&self) -> &Arc<Notify> {
        &self.wake
    }

    /// Verified tokens remembered.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

/// Seconds since the Unix epoch: the clock tokens' `exp`, `nbf` and `iat`
/// are on. Read once per verification at the edge; `verify` takes it as a
/// parameter, so tests choose it.
#[allow(
    clippy::disallowed_methods,
    reason = "JWT time claims are wall-clock Unix times"
)]
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Whether a presented credential is a JWT rather than an API key: three
/// parts, the first a base64url JSON object (`eyJ` is `{"`). Any other
/// byte out of place fails base64url decoding in `verify`.
pub fn looks_like_jwt(token: &[u8]) -> bool {
    token.starts_with(b"eyJ") && memchr::memchr_iter(b'.', token).count() == 2
}

fn validations(issuer: &JwtIssuer) -> Vec<(Algorithm, Validation)> {
    issuer
        .algorithms
        .iter()
        .map(|&alg| {
            let mut v = Validation::new(alg);
            v.set_issuer(&[&issuer.issuer]);
            v.set_audience(&issuer.audiences);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            // Time claims are checked by `verify` against an injected
            // clock, with the issuer's leeway.
            v.validate_exp = false;
            v.validate_nbf = false;
            (alg, v)
        })
        .collect()
}
