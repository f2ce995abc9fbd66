//! `global_limits:` where the fleet's shared counters live, and what a
//! limit does while they cannot be reached.

use std::time::Duration;

use super::Validator;
use crate::defaults::{GLOBAL_LIMITS_KEY_PREFIX, GLOBAL_LIMITS_SLICE, GLOBAL_LIMITS_SYNC_INTERVAL};
use crate::model::{FailMode, GlobalLimits};
use crate::raw::RawGlobalLimits;
use crate::secret::Secret;

const PATH: &str = "global_limits";

impl Validator<'_> {
    pub(super) fn global_limits(&mut self, raw: Option<RawGlobalLimits>) -> Option<GlobalLimits> {
        let raw = raw?;
        self.redis_url(&raw.redis_url);
        let key_prefix = raw
            .key_prefix
            .unwrap_or_else(|| GLOBAL_LIMITS_KEY_PREFIX.to_owned());
        if key_prefix.is_empty() || key_prefix.chars().any(|c| c.is_whitespace()) {
            self.err(
                format!("{PATH}.key_prefix"),
                "must be non-empty, without whitespace",
            );
        }
        let sync_interval = self
            .int(PATH, "sync_interval_ms", raw.sync_interval_ms, 10, 10_000)
            .map_or(GLOBAL_LIMITS_SYNC_INTERVAL, |ms| {
                Duration::from_millis(ms as u64)
            });
        let slice = raw.slice.unwrap_or(GLOBAL_LIMITS_SLICE);
        if !(slice > 0.0 && slice <= 1.0) {
            self.err(
                format!("{PATH}.slice"),
                format!("must be a share of the limit, 0 < slice <= 1, got {slice}"),
            );
        }
        let on_unavailable = self
            .fail_mode(&format!("{PATH}.on_unavailable"), raw.on_unavailable)
            .unwrap_or(FailMode::Open);
        let password = raw.password.map(Secret::new);
        if password.as_ref().is_some_and(|p| p.expose().is_empty()) {
            self.err(format!("{PATH}.password"), "must not be empty");
        }
        Some(GlobalLimits {
            redis_url: raw.redis_url,
            password,
            key_prefix,
            sync_interval,
            slice,
            on_unavailable,
        })
    }

    /// `open` or `closed`; `None` when absent or invalid (error recorded).
    pub(super) fn fail_mode(&mut self, path: &str, v: Option<String>) -> Option<FailMode> {
        match v.as_deref()? {
            "open" => Some(FailMode::Open),
            "closed" => Some(FailMode::Closed),
            other => {
                self.err(path, format!("`{other}` is neither `open` nor `closed`"));
                None
            }
        }
    }

    /// A Redis URL the client accepts, holding no password (it would be
    /// printed by `/admin/config`; `password` is the secret's place).
    fn redis_url(&mut self, url: &str) {
        let path = format!("{PATH}.redis_url");
        let parsed = match url::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return self.err(path, format!("not a URL: {e}")),
        };
        // rediss:// (TLS) would need redis-rs's TLS feature, not built in:
        // refused here rather than when the gateway starts.
        if parsed.scheme() != "redis" {
            return self.err(
                path,
                "must start with redis:// (TLS to Redis is not supported)",
            );
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return self.err(path, "has no host");
        }
        if parsed.password().is_some() {
            return self.err(
                path,
                "holds a password; put it in `global_limits.password` (use ${ENV})",
            );
        }
        let db = parsed.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u16>().is_err() {
            self.err(path, format!("`/{db}` is not a database number"));
        }
    }
}
