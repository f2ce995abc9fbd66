//! OpenAI's rate-limit headers on every answer to a caller with a request
//! or token limit, 429s included: `x-ratelimit-limit-requests`,
//! `x-ratelimit-remaining-requests`, `x-ratelimit-reset-requests` (time
//! until the bucket is full again, as `1s`, `6m0s`, `20ms`) and the same
//! for `-tokens`. When both the key and its tenant have a limit, the one
//! with less left is shown: it is the one the client will run into.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::bucket::Bucket;

/// What the headers say about one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The configured limit per minute.
    pub limit: u32,
    /// Whole units left now.
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset: Duration,
}

impl Window {
    pub(super) fn of(bucket: &Bucket, cap: u32) -> Self {
        Self {
            limit: cap,
            remaining: bucket.remaining(),
            reset: bucket.until_full(cap),
        }
    }
}

/// The request and token windows of one request (no headers when both
/// are `None`: a caller without such limits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateInfo {
    /// Requests per minute.
    pub requests: Option<Window>,
    /// Tokens per minute.
    pub tokens: Option<Window>,
}

impl RateInfo {
    pub(super) fn note(slot: &mut Option<Window>, w: Window) {
        if slot.is_none_or(|old| w.remaining < old.remaining) {
            *slot = Some(w);
        }
    }

    /// Adds the headers to an answer.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (w, names) in [(self.requests, &REQUESTS), (self.tokens, &TOKENS)] {
            let Some(w) = w else { continue };
            headers.insert(names[0].clone(), HeaderValue::from(w.limit));
            headers.insert(names[1].clone(), HeaderValue::from(w.remaining));
            if let Ok(v) = HeaderValue::from_str(&reset_text(w.reset)) {
                headers.insert(names[2].clone(), v);
            }
        }
    }
}

static REQUESTS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];
static TOKENS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

/// OpenAI's duration format: `20ms` under a second, else `1s`, `6m0s`,
/// `1h2m3s` (whole seconds, rounded up so a client that waits it is not
/// early).
fn reset_text(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_reads_like_openais() {
        assert_eq!(reset_text(Duration::from_millis(20)), "20ms");
        assert_eq!(reset_text(Duration::from_millis(1000)), "1s");
        assert_eq!(reset_text(Duration::from_millis(1001)), "2s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
        assert_eq!(reset_text(Duration::from_secs(3723)), "1h2m3s");
    }

    #[test]
    fn the_tighter_window_is_shown() {
        let mut r = RateInfo::default();
        let w = |remaining| Window {
            limit: 10,
            remaining,
            reset: Duration::ZERO,
        };
        RateInfo::note(&mut r.requests, w(5));
        RateInfo::note(&mut r.requests, w(7));
        RateInfo::note(&mut r.requests, w(2));
        let mut h = HeaderMap::new();
        r.apply(&mut h);
        assert_eq!(h["x-ratelimit-remaining-requests"], "2");
        assert_eq!(h["x-ratelimit-reset-requests"], "0ms");
        assert!(h.get("x-ratelimit-limit-tokens").is_none());
    }
}
