//! Switchyard's config: the one file that says which model groups exist,
//! which replicas serve them, where those run and what the gateway's limits are.
//!
//! # Layout
//! - [`raw`]: serde types that mirror the YAML, `deny_unknown_fields`, loose types.
//! - [`interp`]: `${VAR}` interpolation on string scalars, so secrets stay in the env.
//! - [`validate`]: raw -> [`Config`], collecting *every* problem with its field
//!   path, one file per section; it also resolves what the config needs to be
//!   usable: AWS keys from the loader's environment, CA files parsed into
//!   trust anchors, credential files read, every header-bound secret checked.
//! - [`defaults`]: every default value, defined once, with why.
//! - [`jwt`]: `auth.jwt` token issuers and the one JWKS parser.
//! - [`secret`]: [`Secret`], and the one rule for secrets sent in headers.
//! - [`model`]: the validated, immutable types the rest of Switchyard consumes.
//! - [`serialize`]: how those types serialize: back in the file's format.
//! - [`discovery`]: replica templates whose members DNS or registrations supply.
//!
//! There is one way in: [`load_str`] (or [`load_file`]). The gateway's startup,
//! `switchyard check`, the demo and (later) reloads all go through it, so a
//! config that `check` accepts is exactly a config the gateway will serve.
//!
//! This crate does no network I/O and knows nothing of HTTP or tokio.

pub mod defaults;
pub mod discovery;
pub mod error;
pub mod interp;
pub mod jwt;
mod member;
pub mod model;
pub mod raw;
pub mod secret;
pub mod serialize;
pub mod validate;

use serde_yaml_ng::Value;
use sha2::{Digest, Sha256};

pub use discovery::{Discovery, DiscoverySource, DnsRecord, KubePort, Membership};
pub use error::{ConfigError, FieldError};
pub use member::member_addr;
pub use model::*;
pub use secret::Secret;

/// Parses, interpolates and validates a config from YAML text.
///
/// `env` looks up `${VAR}` references and, for AWS replicas without keys in
/// the file, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
/// `AWS_SESSION_TOKEN`; pass `&|k| std::env::var(k).ok()` for the process
/// environment, or a map in tests. Files the config names (CA files,
/// credential files) are read here too.
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let mut value: Value =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    if value.is_null() {
        return Err(ConfigError::Invalid(vec![FieldError::new(
            "",
            "the config is empty",
        )]));
    }
    interp::interpolate(&mut value, env).map_err(ConfigError::Invalid)?;
    let hash = content_hash(&value);
    let raw: raw::RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::Shape(FieldError::new(path, e.into_inner().to_string()))
    })?;
    let mut config = validate::validate(raw, hash, env).map_err(ConfigError::Invalid)?;
    config.hash = resolved_hash(&config);
    Ok(config)
}

/// Reads `path` and calls [`load_str`] with the process environment.
pub fn load_file(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_str(&text, &|k| std::env::var(k).ok())
}

fn content_hash(value: &Value) -> String {
    // Hash the interpolated document, not the text: a rotated secret is a
    // change, a re-indented file is not.
    let canonical = serde_yaml_ng::to_string(value).unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The document's hash extended with what was resolved outside it (AWS keys
/// from the environment, CA certificates from files), so that a reload
/// after a CA file or a key changed is a change, not a no-op.
fn resolved_hash(config: &Config) -> String {
    let mut h = Sha256::new();
    h.update(config.hash.as_bytes());
    let mut feed = |part: &[u8]| {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    };
    for r in config.replicas.iter().chain(&config.templates) {
        for root in r.tls.iter().flat_map(|t| &t.ca_roots) {
            let parts = [
                Some(&root.subject),
                Some(&root.subject_public_key_info),
                root.name_constraints.as_ref(),
            ];
            parts.into_iter().flatten().for_each(|p| feed(p.as_ref()));
        }
        let aws = match &r.cloud_api {
            Some(CloudApi::Bedrock(b)) => Some(&b.credentials),
            Some(CloudApi::Sagemaker(s)) => Some(&s.credentials),
            _ => None,
        };
        if let Some(c) = aws {
            let parts = [
                Some(&c.access_key_id),
                Some(&c.secret_access_key),
                c.session_token.as_ref(),
            ];
            parts
                .into_iter()
                .flatten()
                .for_each(|s| feed(s.expose().as_bytes()));
        }
    }
    // Keys read from files are resolved too: a rotated key is a change.
    for t in &config.tenants {
        for k in &t.keys {
            h.update(k.sha256);
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
