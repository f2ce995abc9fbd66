//! One issuer's signing keys and when to fetch them again.
//!
//! The request path only loads the current key set (one `ArcSwap` load) and,
//! for a `kid` it does not know, raises a flag; the fetcher in the control
//! crate does the network I/O and decides *when* with [`KeyStore::due`]:
//! on schedule, sooner for the flag, but never twice within the issuer's
//! `min_refetch`, so tokens naming garbage `kid`s cannot make the gateway
//! hammer the IdP. A failed fetch keeps the last good keys.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use switchyard_config::jwt::{Jwks, JwksSource, JwtIssuer};
use tokio::time::Instant;
use url::Url;

/// One issuer's keys; carried across config generations while its JWKS
/// source is unchanged (see [`KeyStore::serves`]).
#[derive(Debug)]
pub struct KeyStore {
    /// `Some` for a `jwks_uri` (fetched); `None` for a `jwks_file`.
    uri: Option<Url>,
    /// The file's keys as loaded (identity decides reuse).
    file: Option<Arc<Jwks>>,
    keys: ArcSwap<Jwks>,
    /// Bumped at every install: a token verified under an older set is
    /// verified again (the cache checks it), so a key the IdP withdrew
    /// stops working at the next fetch.
    version: AtomicU64,
    /// A token named a `kid` we do not have.
    wanted: AtomicBool,
    /// The fetcher's bookkeeping; never touched by a request.
    fetch: Mutex<FetchState>,
}

#[derive(Debug, Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    next_due: Option<Instant>,
    failures: u32,
}

/// What a fetch brought.
#[derive(Debug)]
pub enum Fetched {
    /// New keys, and the response's `Cache-Control: max-age`.
    Keys(Jwks, Option<Duration>),
    /// The fetch failed (the message is logged; keys are kept).
    Failed,
}

impl KeyStore {
    /// A store for `issuer`'s source: a file's keys at once, a URI's
    /// empty until the first fetch.
    pub fn new(issuer: &JwtIssuer) -> Self {
        let (uri, file) = match &issuer.jwks {
            JwksSource::Uri(u) => (Some(u.clone()), None),
            JwksSource::File(f) => (None, Some(Arc::clone(&f.keys))),
        };
        let keys = file.clone().unwrap_or_default();
        Self {
            uri,
            file,
            keys: ArcSwap::new(keys),
            version: AtomicU64::new(1),
            wanted: AtomicBool::new(false),
            fetch: Mutex::default(),
        }
    }

    /// Whether this store holds `issuer`'s keys (same URI, or the very
    /// keys of the same loaded file), so a reload keeps it.
    pub fn serves(&self, issuer: &JwtIssuer) -> bool {
        match (&issuer.jwks, &self.uri, &self.file) {
            (JwksSource::Uri(u), Some(mine), _) => u == mine,
            (JwksSource::File(f), _, Some(mine)) => Arc::ptr_eq(&f.keys, mine),
            _ => false,
        }
    }

    /// The URI to fetch, `None` for a file.
    pub fn uri(&self) -> Option<&Url> {
        self.uri.as_ref()
    }

    /// The current keys (the request path: one load).
    pub fn keys(&self) -> arc_swap::Guard<Arc<Jwks>> {
        self.keys.load()
    }

    /// Which key set is current.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Whether the last fetch failed.
    pub fn failing(&self) -> bool {
        self.fetch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failures
            > 0
    }

    /// A token named a `kid` not in the set: fetch as soon as allowed.
    pub fn want_refetch(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }

    /// Whether the fetcher should fetch now; else when it should look
    /// again (`Err`). A fetch is due on schedule, or when a `kid` was
    /// missed; never within `min_refetch` of the last attempt.
    pub fn due(&self, issuer: &JwtIssuer, now: Instant) -> Result<(), Instant> {
        let f = self.fetch.lock().unwrap_or_else(|e| e.into_inner());
        let Some(last) = f.last_attempt else {
            return Ok(());
        };
        let earliest = last + issuer.min_refetch;
        let scheduled = f.next_due.unwrap_or(earliest);
        let at = if self.wanted.load(Ordering::Relaxed) {
            earliest
        } else {
            scheduled.max(earliest)
        };
        if now >= at { Ok(()) } else { Err(at) }
    }

    /// Records a fetch made at `now`: new keys are installed and the next
    /// one scheduled after `max-age` (within `min_refetch..=refresh`); a
    /// failure keeps the keys and retries with backoff up to `refresh`.
    pub fn record(&self, issuer: &JwtIssuer, now: Instant, fetched: Fetched) {
        let mut f = self.fetch.lock().unwrap_or_else(|e| e.into_inner());
        f.last_attempt = Some(now);
        self.wanted.store(false, Ordering::Relaxed);
        let wait = match fetched {
            Fetched::Keys(keys, max_age) => {
                f.failures = 0;
                self.keys.store(Arc::new(keys));
                self.version.fetch_add(1, Ordering::AcqRel);
                max_age
                    .unwrap_or(issuer.refresh)
                    .clamp(issuer.min_refetch, issuer.refresh.max(issuer.min_refetch))
            }
            Fetched::Failed => {
                f.failures = f.failures.saturating_add(1);
                let backoff = issuer.min_refetch.saturating_mul(1 << f.failures.min(10));
                backoff.min(issuer.refresh.max(issuer.min_refetch))
            }
        };
        f.next_due = Some(now + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> JwtIssuer {
        let yaml = "clouds: { c: { provider: private } }\nmodels: [{ name: m, versions: [{ name: v1, weight: 100 }] }]\nreplicas: [{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }]\ntenants: [{ name: t }]\n\
            auth: { jwt: [{ issuer: i, audiences: [a], jwks_uri: \"http://127.0.0.1:1/k\", tenant: t,\n\
                    jwks_refresh_s: 300, jwks_min_refetch_ms: 10000 }] }\n";
        let c = switchyard_config::load_str(yaml, &|_| None).unwrap();
        c.auth.jwt[0].clone()
    }

    fn one_key() -> Jwks {
        Jwks::parse(
            br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn fetches_on_schedule_and_early_for_unknown_kids_but_rate_limited() {
        let i = issuer();
        let s = KeyStore::new(&i);
        let t0 = Instant::now();
        assert!(s.due(&i, t0).is_ok(), "never fetched: due at once");
        s.record(&i, t0, Fetched::Keys(one_key(), None));
        assert_eq!(s.keys().len(), 1);
        assert_eq!(s.due(&i, t0), Err(t0 + Duration::from_secs(300)));

        s.want_refetch();
        assert_eq!(
            s.due(&i, t0 + Duration::from_secs(1)),
            Err(t0 + Duration::from_secs(10)),
            "an unknown kid waits out min_refetch"
        );
        assert!(s.due(&i, t0 + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn max_age_is_respected_within_bounds_and_failures_keep_the_keys() {
        let i = issuer();
        let s = KeyStore::new(&i);
        let t0 = Instant::now();
        s.record(
            &i,
            t0,
            Fetched::Keys(one_key(), Some(Duration::from_secs(1))),
        );
        assert_eq!(s.due(&i, t0), Err(t0 + Duration::from_secs(10)), "floor");
        s.record(
            &i,
            t0,
            Fetched::Keys(one_key(), Some(Duration::from_secs(60))),
        );
        assert_eq!(s.due(&i, t0), Err(t0 + Duration::from_secs(60)));
        let v = s.version();
        s.record(&i, t0, Fetched::Failed);
        assert_eq!(s.keys().len(), 1, "last good keys kept");
        assert_eq!(s.version(), v);
        assert_eq!(s.due(&i, t0), Err(t0 + Duration::from_secs(20)), "backoff");
        for _ in 0..10 {
            s.record(&i, t0, Fetched::Failed);
        }
        assert_eq!(s.due(&i, t0), Err(t0 + Duration::from_secs(300)), "capped");
    }
}
