//! `auth.jwt`: identity providers whose signed tokens (JWT) authenticate
//! clients, as an alternative to tenant API keys, and the one JWKS parser
//! the loader (`jwks_file`) and the gateway's fetcher (`jwks_uri`) share.
//!
//! Only public-key algorithms are accepted: a JWKS publishes public keys,
//! and an HMAC "key" taken from it would let anyone who reads the JWKS mint
//! tokens. `none` cannot be named at all.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
pub use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Serialize, Serializer};
use url::Url;

/// `auth:` client authentication besides tenant API keys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientAuth {
    /// Token issuers, in file order (none: no JWT auth).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jwt: Vec<JwtIssuer>,
}

impl ClientAuth {
    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.jwt.is_empty()
    }
}

/// `auth.jwt[i]`: one identity provider.
#[derive(Debug, Clone, Serialize)]
pub struct JwtIssuer {
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    /// `aud` values accepted (a token must name at least one).
    pub audiences: Vec<String>,
    /// Where its signing keys come from.
    #[serde(flatten)]
    pub jwks: JwksSource,
    /// Signature algorithms accepted (public-key ones only).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    #[serde(rename = "leeway_s", serialize_with = "secs")]
    pub leeway: Duration,
    /// How often `jwks_uri` is fetched again (the IdP's `max-age` may
    /// make it sooner, never below `min_refetch`).
    #[serde(rename = "jwks_refresh_s", serialize_with = "secs")]
    pub refresh: Duration,
    /// Least time between two fetches, also when tokens name an unknown
    /// `kid` (which asks for one at once).
    #[serde(rename = "jwks_min_refetch_ms", serialize_with = "millis")]
    pub min_refetch: Duration,
    /// Every token of this issuer is this tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The claim (a dotted path into nested objects) naming the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_claim: Option<ClaimPath>,
    /// Claim value -> tenant name; when set, only these values are tenants.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tenant_map: BTreeMap<String, String>,
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone, Serialize)]
pub enum JwksSource {
    /// Fetched at start and refreshed in the background by the gateway.
    #[serde(rename = "jwks_uri")]
    Uri(Url),
    /// Read and parsed at load (offline use, tests); a reload re-reads it.
    #[serde(rename = "jwks_file")]
    File(JwksFile),
}

/// A JWKS file and the keys it held when the config was loaded.
#[derive(Debug, Clone)]
pub struct JwksFile {
    /// The path as written.
    pub path: PathBuf,
    /// Its keys.
    pub keys: Arc<Jwks>,
}

impl Serialize for JwksFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.path.serialize(s)
    }
}

/// `tenant_claim`: `org_id`, or `realm_access.tenant` for a nested one.
#[derive(Debug, Clone)]
pub struct ClaimPath {
    text: String,
    segments: Vec<String>,
}

impl ClaimPath {
    /// `None` when a segment is empty.
    pub fn parse(text: &str) -> Option<Self> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        segments.iter().all(|s| !s.is_empty()).then(|| Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// The string at this path in `claims`; numbers are taken as their
    /// decimal text (some IdPs send numeric org ids).
    pub fn find<'a>(&self, claims: &'a serde_json::Value) -> Option<std::borrow::Cow<'a, str>> {
        let mut at = claims;
        for s in &self.segments {
            at = at.get(s)?;
        }
        match at {
            serde_json::Value::String(s) => Some(s.as_str().into()),
            serde_json::Value::Number(n) => Some(n.to_string().into()),
            _ => None,
        }
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Serialize for ClaimPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(s)
    }
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// The usable signing keys of one JWKS document.
#[derive(Debug, Default)]
pub struct Jwks {
    keys: Vec<JwkKey>,
}

/// One signing key.
#[derive(Debug)]
pub struct JwkKey {
    /// `kid`, which tokens name in their header.
    pub kid: Option<String>,
    /// `alg`, when the JWK pins one: a token must then use exactly it.
    pub alg: Option<Algorithm>,
    /// The public key.
    pub key: DecodingKey,
}

impl Jwks {
    /// Parses a JWKS (`{"keys": [...]}`). Keys that cannot sign tokens for
    /// us are skipped, not fatal, since IdPs publish those too: `use: enc`,
    /// symmetric (`oct`) keys, unknown key types. `Err` when the document is
    /// not a JWKS or holds no usable key.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc =
            serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
        let total = doc.keys.len();
        let keys: Vec<JwkKey> = doc.keys.into_iter().filter_map(usable).collect();
        if keys.is_empty() {
            return Err(format!(
                "none of its {total} keys is a usable signing key (RSA, EC P-256/P-384 or Ed25519)"
            ));
        }
        Ok(Self { keys })
    }

    /// The key a token names by `kid`; a token without `kid` may use the
    /// only key of a one-key set.
    pub fn find(&self, kid: Option<&str>) -> Option<&JwkKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }

    /// The `kid`s of its keys, in document order (`-` for a key without).
    pub fn kids(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|k| k.kid.as_deref().unwrap_or("-"))
            .collect()
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds no key (only the empty placeholder does).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn usable(value: serde_json::Value) -> Option<JwkKey> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    if matches!(
        jwk.algorithm,
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
    ) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(a.to_string().parse::<Algorithm>().ok().filter(is_public)?),
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(JwkKey {
        kid: jwk.common.key_id,
        alg,
        key,
    })
}

/// Whether `alg` verifies with a public key (everything but HMAC).
pub fn is_public(alg: &Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","kid":"a","alg":"ES256",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn usable_keys_are_kept_and_the_rest_skipped() {
        let doc = format!(
            r#"{{"keys":[{EC},
              {{"kty":"oct","k":"c2VjcmV0","kid":"h"}},
              {{"kty":"EC","crv":"P-256","kid":"e","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}},
              {{"kty":"XYZ","kid":"z"}}]}}"#
        );
        let set = Jwks::parse(doc.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.find(Some("a")).unwrap().alg, Some(Algorithm::ES256));
        assert!(set.find(Some("h")).is_none(), "an HMAC key is never usable");
        assert!(
            set.find(None).is_some(),
            "the only key serves a token without kid"
        );
    }

    #[test]
    fn a_document_without_usable_keys_is_refused() {
        assert!(
            Jwks::parse(b"{\"keys\":[]}")
                .unwrap_err()
                .contains("none of its 0")
        );
        assert!(Jwks::parse(b"[]").unwrap_err().contains("not a JWKS"));
    }

    #[test]
    fn claim_paths_reach_into_nested_objects() {
        let claims = serde_json::json!({"org": 42, "realm_access": {"tenant": "acme"}});
        let p = ClaimPath::parse("realm_access.tenant").unwrap();
        assert_eq!(p.find(&claims).as_deref(), Some("acme"));
        assert_eq!(
            ClaimPath::parse("org").unwrap().find(&claims).as_deref(),
            Some("42")
        );
        assert!(
            ClaimPath::parse("realm_access")
                .unwrap()
                .find(&claims)
                .is_none()
        );
        assert!(ClaimPath::parse("a..b").is_none());
    }
}
