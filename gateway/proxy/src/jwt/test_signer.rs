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
    Rs256(sig::RsaKeyPair),
}

/// A 2048-bit RSA key (PKCS#1 DER) made for these tests only: `ring`
/// verifies and signs RSA but cannot generate a key.
const TEST_RSA_KEY: &str = concat!(
    "MIIEowIBAAKCAQEAqrRsUEN5F3XvsPTAUst4vSGg/VGJFTI5ods0aML3bDbmFqTz3K9RUWyXUfKloaZHUT28MOkGM2JnZjcxGyrn",
    "5Jmi5s8cmjK/C36nlrhdoraeOYNuDNRBQBw7aesCNto36KMr6aunT9EiFqebsWB/sD32SaJtTQOIrRFl4MAlomOQs01fjytl+uFb",
    "pdtDgUE1NBlfi/5KVXM4xe+gA7P9DJ2VlJM2lsDXY7A0e3nGPJ5v1At/6q7gIwT5sJ8K5kHUOrYmYuL7Yh5ABMRC/ovjE486hpIE",
    "Y9zT2/ksf2Xzo4P7aGWLxm2++KQ7Sc7GC3zX/uG55oZfEhK+GLKB5Z6lkQIDAQABAoIBAAXH+XkYZ+PzAwyXpWHIcUzadDTQC5fz",
    "rP79yP8ZRz7bdxxiNr4NE/BxgIhucsyQMI8gS5zOb37TANR13wxf/h2AVIODlSDlwhGWFv/kO4uUqrQg7tuxXopYymxSYK9R4Z3X",
    "1NdjkFWELCbfQ0cVEQ37czlYLmJy0bCmy6/6YevnbAT/4EPEf9dri6F8oQaLEtT6VOpYlA3iSdwQYHvHe7bpZXQwC7ADnDU6tvpt",
    "HIydVAmk+CdY1NmWPBjj0HnYU9SfYhDlE/uM87CcZVsgN3SlsPUlHQJqXDksJM8inOA5LOMnCbSQMKRwbhG2b4rVuOrgmiFsSlNr",
    "Lh3hrkyD9eECgYEA8I64fZ94lIw6nfwPe2/o/+pesoB2hwPgf6LR4vGWOWdjKtphYJPEDFD8s4jQlCRE0+GS9NpLHIYmaQfJwbwL",
    "8GB2KHsxtE2fA42hv4UtInt7wfuSlmv+YZ0IJD6ivd51/NnIiW1QDkq9CIrv5dCm4TVeYJkoXy8HEmmTkjZn1AkCgYEAtanBUO+N",
    "fhuA2GsxgtfV4wsyAkMCnOoSjQlAn7LKX4qSUo27DIDn5BAda7V2RnwE35kUn47rupFiFzDUqrmo+vv2cKM4h4p/q3lfw3xrFZ3E",
    "vQRUIUNRMeG0E5T4fxaJkd4mVuGxMB3VYIUGwSv74ddaDkUSXVjO8HpgJBWbd0kCgYEAip1y6dBupwp27HpGYZaG6JCgqLMlmX8+",
    "ac3kq6USL1nH5vWXjxMWsRIpyzpXFkYf8wfUqorvJSyYDYWTWLOHHag37fOvHHpt2ppOThHrhCcrlQfl3A+2sYDPJDODi20ZB+5m",
    "g+oda17dtoJ44jBtOPCLxZX7kX2D0bRMeMAo7CECgYBHXaL2OsWpLwDVBHd04XnDMhi5Tr3uCv6yrVnX4xMhqXyGNeuvo8x1ieck",
    "8yq90ebQOIEjlbABoS+Z0LMbRsidoPJVmamRhdVV9d6rG2uuGEa7wsGSN7HkGLj3oGRm+OGejlkddJh5QJ8cxeW7aZ4QQNu+E2B9",
    "j2/shQbT5jEnEQKBgHCpKIjnmsVJpq592kJSjnfcrr1NIYcWyjlUo2/R2VTTi49QVfsntkMYMPOCOjNB6U0MpTysXV5StGA7+uOI",
    "xgZIBXWGGOOkcCvuoYUBcyBY3KYjexPrArGFNlrsZdvSR3HL3e/ULk1LijmQ09Wlxpz31PQLo+MYbOlU/iG7w7tJ",
);

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

    /// The fixed test RSA key (RS256).
    pub fn rs256(kid: &str) -> Self {
        use base64::engine::general_purpose::STANDARD;
        let der = STANDARD.decode(TEST_RSA_KEY).unwrap();
        Self {
            kid: kid.into(),
            key: Key::Rs256(sig::RsaKeyPair::from_der(&der).unwrap()),
        }
    }

    /// `alg` of its tokens.
    pub fn alg(&self) -> &'static str {
        match self.key {
            Key::Es256(_) => "ES256",
            Key::EdDsa(_) => "EdDSA",
            Key::Rs256(_) => "RS256",
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
            Key::Rs256(k) => {
                let p: sig::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                serde_json::json!({"kty": "RSA", "kid": self.kid, "alg": "RS256",
                    "n": B64.encode(&p.n), "e": B64.encode(&p.e)})
            }
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
            Key::Rs256(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                let rng = SystemRandom::new();
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, msg.as_bytes(), &mut out)
                    .unwrap();
                out
            }
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
