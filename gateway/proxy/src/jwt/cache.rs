//! Tokens already verified, so a client that sends the same token on every
//! request (they all do, for its lifetime) pays the signature check once.
//!
//! Keyed by the *whole* token, never by a part of it: a cache keyed on the
//! signature alone would accept that signature glued to other claims. An
//! entry is valid until the token's `exp` (plus leeway) and only under the
//! key set it was verified with: a JWKS refresh re-verifies once. Bounded:
//! past [`CAPACITY`] entries the expired ones go, and if none have, all.

use dashmap::DashMap;

/// Most tokens remembered per config generation (at ~1 KiB a token, ~10 MiB).
pub const CAPACITY: usize = 10_000;
/// Longest token remembered (IdPs' are 0.5–4 KiB); longer ones are verified
/// every time, so the cache stays within ~`CAPACITY` × 8 KiB at worst.
pub const MAX_TOKEN: usize = 8 << 10;

/// A verified token's verdict.
#[derive(Debug, Clone, Copy)]
pub struct Verdict {
    /// Index of its issuer in `auth.jwt`.
    pub issuer: usize,
    /// Index of its tenant in `tenants`.
    pub tenant: usize,
    /// Unix seconds after which it is no longer accepted (exp + leeway).
    pub until: f64,
    /// The issuer's key-set version it was verified under.
    pub keys: u64,
}

/// Verified tokens of one config generation.
#[derive(Debug, Default)]
pub struct TokenCache {
    map: DashMap<Box<str>, Verdict>,
}

impl TokenCache {
    /// The verdict for `token`, if verified before and still valid at `now`
    /// under key-set version `keys_of(issuer)`.
    pub fn get(&self, token: &str, now: f64, keys_of: impl Fn(usize) -> u64) -> Option<Verdict> {
        let v = *self.map.get(token)?;
        (now < v.until && keys_of(v.issuer) == v.keys).then_some(v)
    }

    /// Remembers a verified token.
    pub fn put(&self, token: &str, verdict: Verdict, now: f64) {
        if token.len() > MAX_TOKEN {
            return;
        }
        if self.map.len() >= CAPACITY {
            self.map.retain(|_, v| now < v.until);
            if self.map.len() >= CAPACITY {
                self.map.clear();
            }
        }
        self.map.insert(token.into(), verdict);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Verdict = Verdict {
        issuer: 0,
        tenant: 3,
        until: 100.0,
        keys: 1,
    };

    #[test]
    fn entries_hold_until_expiry_and_only_under_their_key_set() {
        let c = TokenCache::default();
        c.put("a.b.c", V, 0.0);
        assert_eq!(c.get("a.b.c", 50.0, |_| 1).unwrap().tenant, 3);
        assert!(c.get("a.b.c", 100.0, |_| 1).is_none(), "expired");
        assert!(
            c.get("a.b.c", 50.0, |_| 2).is_none(),
            "keys refreshed since"
        );
        assert!(c.get("a.b.x", 50.0, |_| 1).is_none(), "whole token only");
        let huge = "x".repeat(MAX_TOKEN + 1);
        c.put(&huge, V, 0.0);
        assert!(c.get(&huge, 50.0, |_| 1).is_none(), "too long to keep");
    }

    #[test]
    fn it_stays_bounded() {
        let c = TokenCache::default();
        for i in 0..CAPACITY + 10 {
            let until = if i < 5 { 1.0 } else { 1e12 };
            c.put(&format!("t{i}"), Verdict { until, ..V }, 2.0);
        }
        assert!(c.len() <= CAPACITY, "{}", c.len());
    }
}
