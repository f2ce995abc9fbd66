//! The JWKS fetcher: keeps every `auth.jwt` issuer's signing keys current,
//! off the request path.
//!
//! Each round loads the serving snapshot and fetches the `jwks_uri` of
//! every issuer whose [`KeyStore::due`] says so: at start, on schedule
//! (`jwks_refresh_s`, sooner if the IdP's `Cache-Control: max-age` says),
//! and when a request missed a `kid` (the data plane notifies us), never
//! twice within `jwks_min_refetch_ms`. A failed fetch (down, non-200, not
//! a JWKS, no usable key) keeps the last good keys and is retried with
//! backoff. Fetches go through the snapshot's upstream client (hyper +
//! rustls, webpki roots), bounded in time and size. The event feed gets a
//! line when an issuer's key ids change, when fetching starts failing and
//! when it recovers (not once per failed retry).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full, Limited};
use switchyard_config::jwt::{Jwks, JwtIssuer};
use switchyard_proxy::jwt::keys::{Fetched, KeyStore};
use switchyard_proxy::upstream::UpstreamClient;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::Events;
use crate::reload::Controller;

/// Largest JWKS accepted (real ones are a few KB).
pub const MAX_BODY: usize = 1 << 20;
/// Time one fetch may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Longest sleep between rounds, so a reload's new issuers are fetched soon.
const IDLE: Duration = Duration::from_secs(1);

/// Fetches until `stop` is cancelled.
pub async fn run(gw: Arc<Controller>, stop: CancellationToken) {
    loop {
        let snap = gw.proxy().snapshot();
        let mut next = Instant::now() + IDLE;
        let wake = snap.jwt.as_ref().map(|j| Arc::clone(j.wake()));
        for (issuer, store) in snap.jwt.iter().flat_map(|j| j.issuers()) {
            if let Some(at) = refresh(&snap.client, &gw.events, issuer, store).await {
                next = next.min(at);
            }
        }
        drop(snap);
        let woken = async {
            match &wake {
                Some(w) => w.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
            () = woken => {}
        }
    }
}

/// Fetches `issuer`'s keys if due; returns when to look again (`None`
/// for a `jwks_file`, which a reload re-reads).
async fn refresh(
    client: &UpstreamClient,
    events: &Events,
    issuer: &JwtIssuer,
    store: &KeyStore,
) -> Option<Instant> {
    let uri = store.uri()?;
    if let Err(at) = store.due(issuer, Instant::now()) {
        return Some(at);
    }
    let name = &issuer.issuer;
    let was_failing = store.failing();
    let fetched = match fetch(client, uri.as_str()).await {
        Ok((keys, max_age)) => {
            let (old, new) = (store.keys().kids().join(", "), keys.kids().join(", "));
            if old != new {
                events.push(
                    "jwks_keys_changed",
                    name,
                    format!("key ids now [{new}], were [{old}]"),
                );
            } else if was_failing {
                events.push("jwks_fetch_recovered", name, format!("{uri} answers again"));
            }
            Fetched::Keys(keys, max_age)
        }
        Err(why) => {
            tracing::warn!(issuer = %name, jwks_uri = %uri, %why,
                "JWKS fetch failed; keeping the last good keys");
            if !was_failing {
                let kept = store.keys().len();
                events.push(
                    "jwks_fetch_failed",
                    name,
                    format!("{uri}: {why}; keeping the last good keys ({kept})"),
                );
            }
            Fetched::Failed
        }
    };
    store.record(issuer, Instant::now(), fetched);
    store.due(issuer, Instant::now()).err()
}

/// GETs and parses one JWKS; the response's `max-age`, if any.
pub async fn fetch(client: &UpstreamClient, uri: &str) -> Result<(Jwks, Option<Duration>), String> {
    let req = Request::get(uri)
        .header(header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("bad request: {e}"))?;
    let get = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let max_age = resp
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((body, max_age))
    };
    let (body, max_age) = tokio::time::timeout(TIMEOUT, get)
        .await
        .map_err(|_| format!("no answer in {TIMEOUT:?}"))??;
    Ok((Jwks::parse(&body)?, max_age))
}

/// `max-age=N` of a `Cache-Control` value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())?
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_among_other_directives() {
        assert_eq!(
            max_age("public, max-age=3600, must-revalidate"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("Max-Age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
