//! One token's checks, in order: cached verdict; header (`alg`, `kid`,
//! no `crit`); trusted `iss`; key by `kid`; signature, `iss`, `aud`
//! (jsonwebtoken); `exp`, `nbf`, `iat` against the caller's clock with the
//! issuer's leeway; the tenant its claims name. Errors say which check
//! failed and never contain the token.

use jsonwebtoken::errors::ErrorKind;
use serde_json::Value;

use super::JwtAuth;
use super::cache::Verdict;

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    /// Not a well-formed JWS.
    #[error("malformed token")]
    Malformed,
    /// `iss` names no configured issuer.
    #[error("token issuer is not trusted")]
    UntrustedIssuer,
    /// No key with the token's `kid` (a refetch is under way).
    #[error("unknown key id (the issuer's keys are being refreshed: retry shortly)")]
    UnknownKey,
    /// `alg` not accepted for this issuer or key.
    #[error("token algorithm not allowed")]
    Algorithm,
    /// The header lists extensions (`crit`) we do not implement.
    #[error("token has critical header extensions")]
    Critical,
    /// The signature does not verify.
    #[error("invalid token signature")]
    Signature,
    /// No accepted `aud`.
    #[error("token audience not accepted")]
    Audience,
    /// A required claim is missing or of the wrong type.
    #[error("token claim `{0}` is missing or malformed")]
    Claim(String),
    /// `exp` passed.
    #[error("token expired")]
    Expired,
    /// `nbf` not reached.
    #[error("token not valid yet")]
    NotYetValid,
    /// `iat` in the future.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// Valid, but its claims name no configured tenant (403).
    #[error("the token's tenant {0} is not configured")]
    UnknownTenant(String),
}

impl JwtAuth {
    /// The index in `config.tenants` of the tenant `token` authenticates,
    /// at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: f64) -> Result<usize, JwtError> {
        let version = |i: usize| self.issuers.get(i).map_or(0, |i| i.store.version());
        if let Some(v) = self.cache.get(token, now, version) {
            return Ok(v.tenant);
        }
        let verdict = self.check(token, now)?;
        self.cache.put(token, verdict, now);
        Ok(verdict.tenant)
    }

    /// Every check of [`JwtAuth::verify`], without the cache of verified
    /// tokens (what a token costs the first time; the bench measures it).
    pub fn check(&self, token: &str, now: f64) -> Result<Verdict, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(JwtError::Critical);
        }
        #[derive(serde::Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<Iss>(token)
            .map_err(|_| JwtError::Malformed)?
            .iss
            .ok_or_else(|| JwtError::Claim("iss".into()))?;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.config.issuer == iss)
            .ok_or(JwtError::UntrustedIssuer)?;
        let (_, validation) = issuer
            .validations
            .iter()
            .find(|(a, _)| *a == header.alg)
            .ok_or(JwtError::Algorithm)?;
        let keys_version = issuer.store.version();
        let keys = issuer.store.keys();
        let Some(key) = keys.find(header.kid.as_deref()) else {
            issuer.store.want_refetch();
            self.wake.notify_one();
            return Err(JwtError::UnknownKey);
        };
        if key.alg.is_some_and(|a| a != header.alg) {
            return Err(JwtError::Algorithm);
        }
        let claims = jsonwebtoken::decode::<Value>(token, &key.key, validation)
            .map_err(|e| match e.into_kind() {
                ErrorKind::InvalidSignature => JwtError::Signature,
                ErrorKind::InvalidAudience => JwtError::Audience,
                ErrorKind::InvalidIssuer => JwtError::UntrustedIssuer,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => JwtError::Algorithm,
                ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => {
                    JwtError::Claim(c)
                }
                _ => JwtError::Malformed,
            })?
            .claims;
        let until = times(&claims, now, issuer.config.leeway.as_secs_f64())?;
        let tenant = self.tenant_of(&issuer.config, &claims)?;
        Ok(Verdict {
            issuer: index,
            tenant,
            until,
            keys: keys_version,
        })
    }

    fn tenant_of(
        &self,
        issuer: &switchyard_config::jwt::JwtIssuer,
        claims: &Value,
    ) -> Result<usize, JwtError> {
        let Some(path) = &issuer.tenant_claim else {
            let name = issuer.tenant.as_deref().unwrap_or_default();
            return self
                .tenants
                .get(name)
                .copied()
                .ok_or_else(|| JwtError::UnknownTenant(format!("`{name}`")));
        };
        let value = path.find(claims).ok_or_else(|| {
            JwtError::UnknownTenant(format!("(claim `{}` is absent)", path.as_str()))
        })?;
        let name = if issuer.tenant_map.is_empty() {
            Some(value.as_ref())
        } else {
            issuer.tenant_map.get(value.as_ref()).map(String::as_str)
        };
        name.and_then(|n| self.tenants.get(n).copied())
            .ok_or_else(|| {
                let shown: String = value.chars().take(64).collect();
                JwtError::UnknownTenant(format!("`{shown}` (claim `{}`)", path.as_str()))
            })
    }
}

/// Checks `exp` (required), `nbf` and `iat` at `now` with `leeway`;
/// returns until when the token is accepted.
fn times(claims: &Value, now: f64, leeway: f64) -> Result<f64, JwtError> {
    let number = |name: &str| -> Result<Option<f64>, JwtError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| JwtError::Claim(name.into())),
        }
    };
    let exp = number("exp")?.ok_or_else(|| JwtError::Claim("exp".into()))?;
    if now >= exp + leeway {
        return Err(JwtError::Expired);
    }
    if number("nbf")?.is_some_and(|nbf| now + leeway < nbf) {
        return Err(JwtError::NotYetValid);
    }
    if number("iat")?.is_some_and(|iat| now + leeway < iat) {
        return Err(JwtError::IssuedInFuture);
    }
    Ok(exp + leeway)
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
