//! Test-only: mints tokens the way an IdP does (ES256 or EdDSA on `ring`)
//! and publishes the matching JWK. Shared by the unit tests, the bench and
//! the end-to-end tests (included by path), so all sign one way.
#![allow(dead_code)] // each includer uses a part of it

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair as _};

/// A signing key with its `kid`.
pub struct Signer {
    /// The `kid` tokens name and the JWK carries.
    pub kid: String,
    key: Key,
}

enum Key {
    Es256(sig::EcdsaKeyPair),
    EdDsa(sig::Ed25519KeyPair),
}

impl Signer {
    /// A fresh P-256 key.
    pub fn es256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let alg = &sig::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = sig::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        Self {
            kid: kid.into(),
            key: Key::Es256(key),
        }
    }

    /// A fresh Ed25519 key.
    pub fn eddsa(kid: &str) -> Self {
        let pkcs8 = sig::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let key = sig::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Self {
            kid: kid.into(),
            key: Key::EdDsa(key),
        }
    }

    /// `alg` of its tokens.
    pub fn alg(&self) -> &'static str {
        match self.key {
            Key::Es256(_) => "ES256",
            Key::EdDsa(_) => "EdDSA",
        }
    }

    /// Its public JWK.
    pub fn jwk(&self) -> serde_json::Value {
        match &self.key {
            Key::Es256(k) => {
                let p = k.public_key().as_ref();
                serde_json::json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                    "alg": "ES256", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..65])})
            }
            Key::EdDsa(k) => serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid,
                "x": B64.encode(k.public_key().as_ref())}),
        }
    }

    /// A JWKS of `signers`' keys.
    pub fn jwks(signers: &[&Signer]) -> String {
        let keys: Vec<_> = signers.iter().map(|s| s.jwk()).collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// A token with `claims`, signed by this key and naming its `kid`.
    pub fn token(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid});
        self.token_with(&header, claims)
    }

    /// A token with this exact header (to forge `kid`, `alg`, `crit`).
    pub fn token_with(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let msg = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = match &self.key {
            Key::Es256(k) => k
                .sign(&SystemRandom::new(), msg.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Key::EdDsa(k) => k.sign(msg.as_bytes()).as_ref().to_vec(),
        };
        format!("{msg}.{}", B64.encode(signature))
    }
}

/// Seconds since the Unix epoch, now: what an IdP stamps in `iat`/`exp`.
#[allow(clippy::disallowed_methods, reason = "JWT times are wall-clock")]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
