//! Raw -> validated. Collects every problem with its field path.
//!
//! One file per section of the config; this one holds the entry point and
//! the helpers they share (ranges, names, the error list). Defaults come
//! from [`crate::defaults`], never from literals here.
//!
//! Validation also *resolves* what a config needs to be usable, so that a
//! config `switchyard check` accepts is one the gateway can serve: AWS keys
//! omitted from the file are read through the loader's `env` function
//! ([`aws`]), CA files are read and parsed ([`tls`]), credential files are
//! read and every secret bound for a header is checked ([`auth`]).

use std::time::Duration;

use crate::FieldError;
use crate::model::Config;
use crate::raw::RawConfig;

mod auth;
mod aws;
mod cloud;
mod cors;
mod discovery;
mod global_limits;
mod jwt;
mod kubernetes;
mod models;
mod replicas;
mod rollout;
mod routing;
mod server;
mod server_tls;
mod tenants;
mod tls;

pub(crate) use cloud::metadata_address;

/// How validation looks up environment variables: the same function that
/// `${VAR}` interpolation used (see [`crate::load_str`]).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Turns a parsed file into a [`Config`], or lists every problem found.
///
/// `env` is the loader's environment: AWS replicas without keys in the
/// file take `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
/// `AWS_SESSION_TOKEN` from it.
pub fn validate(raw: RawConfig, hash: String, env: Env<'_>) -> Result<Config, Vec<FieldError>> {
    let mut v = Validator {
        errors: Vec::new(),
        env,
    };
    let server = v.server(raw.server);
    let clouds = v.clouds(raw.clouds);
    let models = v.models(raw.models);
    let replicas = v.replicas(raw.replicas, &models, &clouds);
    let (tenants, key_index) = v.tenants(raw.tenants, &models, &clouds, !raw.auth.jwt.is_empty());
    let auth = v.client_auth_section(raw.auth, &tenants);
    v.client_auth(&server, &tenants);
    v.cross_checks(&models, &replicas);
    // A template serves its version (through its members) in the check above.
    let (templates, replicas) = replicas.into_iter().partition(|r| r.discovery.is_some());
    v.residency(&models, &clouds);
    let global_limits = v.global_limits(raw.global_limits);
    if v.errors.is_empty() {
        Ok(Config {
            server,
            clouds,
            models,
            replicas,
            templates,
            tenants,
            key_index,
            auth,
            global_limits,
            hash,
        })
    } else {
        Err(v.errors)
    }
}

struct Validator<'e> {
    errors: Vec<FieldError>,
    env: Env<'e>,
}

impl Validator<'_> {
    fn err(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError::new(path, reason));
    }

    /// `None` when absent or invalid (the error is recorded); the caller uses the default.
    fn int(
        &mut self,
        base: &str,
        field: &str,
        v: Option<i64>,
        min: i64,
        max: i64,
    ) -> Option<usize> {
        let v = v?;
        if (min..=max).contains(&v) {
            Some(v as usize)
        } else {
            self.err(
                format!("{base}.{field}"),
                format!("must be {min}..={max}, got {v}"),
            );
            None
        }
    }

    /// A duration in milliseconds, 1 ms ..= 24 h.
    fn ms(&mut self, base: &str, field: &str, v: Option<i64>) -> Option<Duration> {
        self.int(base, field, v, 1, 24 * 3600 * 1000)
            .map(|ms| Duration::from_millis(ms as u64))
    }

    /// A duration in milliseconds where 0 is allowed, up to `max`.
    fn ms_or_zero(
        &mut self,
        base: &str,
        field: &str,
        v: Option<i64>,
        max: i64,
    ) -> Option<Duration> {
        self.int(base, field, v, 0, max)
            .map(|ms| Duration::from_millis(ms as u64))
    }

    /// Names appear in URLs, headers and `group@version`: keep them plain.
    fn name(&mut self, path: &str, name: &str) {
        if name.is_empty() {
            self.err(path, "must not be empty");
        } else if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._-:/".contains(*c)))
        {
            self.err(
                path,
                format!("`{name}` contains `{c}`; use letters, digits and . _ - : /"),
            );
        }
    }
}

/// An HTTP header name (RFC 9110 `token`).
fn http_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
