//! Active health checks: every replica of a group with a `health_check`
//! block is probed at its interval with a cheap GET (OpenAI `/v1/models`,
//! KServe `/v2/health/ready`, or the configured path), never a billed
//! completion.
//!
//! - One task owns all probing. Each round it loads the current snapshot,
//!   so it follows reloads: replicas added get probed, removed ones are
//!   forgotten, and results go to the replica's live stats (keyed by id in
//!   the stats registry), which is what routing reads.
//! - Rise/fall with hysteresis lives in the router
//!   ([`switchyard_router::health`]): `fall` failed probes in a row mark a
//!   replica down, `rise` good ones bring it back (into slow start). Down
//!   takes a replica out of rotation only while no request to it has
//!   succeeded recently: a replica whose health endpoint is broken but
//!   which serves traffic fine keeps serving.
//! - At most one probe per replica is in flight; each is bounded by
//!   `timeout_ms`; probes start at a random offset within the interval so
//!   a fleet is not probed in lock-step.
//! - The task and its probes stop when the gateway shuts down.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use switchyard_config::{HealthCheck, Protocol};
use switchyard_router::clock;
use tokio::task::JoinSet;
use tokio::time::Instant;

use switchyard_proxy::upstream::UpstreamClient;

use crate::reload::Controller;

/// Longest sleep between two looks at the snapshot, so a reload that adds
/// health checks is picked up within this.
const MAX_TICK: Duration = Duration::from_millis(500);

/// A request success at most this long ago (or `2 × fall × interval`, if
/// longer) overrules failing probes: the replica demonstrably serves.
const MIN_TRAFFIC_GRACE: Duration = Duration::from_secs(10);

/// The probe loop (see the module docs); ends when `stop` resolves.
pub async fn run(gw: Arc<Controller>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut due: HashMap<String, Instant> = HashMap::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut probes: JoinSet<String> = JoinSet::new();
    let mut wake = Instant::now();
    loop {
        tokio::select! {
            () = &mut stop => break,
            // A finished probe only frees its replica; rounds (which walk
            // every replica) run at due times, not once per completion.
            Some(Ok(id)) = probes.join_next() => { busy.remove(&id); }
            () = tokio::time::sleep_until(wake) => {
                wake = round(&gw, &mut due, &mut busy, &mut probes);
            }
        }
    }
    probes.shutdown().await;
}

/// One look at the current snapshot: starts the probes that are due and
/// returns when the next one will be.
fn round(
    gw: &Arc<Controller>,
    due: &mut HashMap<String, Instant>,
    busy: &mut HashSet<String>,
    probes: &mut JoinSet<String>,
) -> Instant {
    let snap = gw.proxy().snapshot();
    let now = Instant::now();
    let mut wake = now + MAX_TICK;
    let checks: HashMap<&str, &HealthCheck> = snap
        .config
        .models
        .iter()
        .filter_map(|m| Some((m.name.as_str(), m.health_check.as_ref()?)))
        .collect();
    let mut seen = HashSet::new();
    for (i, e) in snap.table.entries().iter().enumerate() {
        let Some(hc) = checks.get(e.replica.model.as_str()) else {
            continue;
        };
        let id = &e.replica.id;
        seen.insert(id.as_str());
        let at = *due
            .entry(id.clone())
            .or_insert_with(|| now + jitter(hc.interval));
        if at > now || busy.contains(id) {
            wake = wake.min(at.max(now + Duration::from_millis(5)));
            continue;
        }
        due.insert(id.clone(), now + hc.interval);
        wake = wake.min(now + hc.interval);
        busy.insert(id.clone());
        let up = &snap.upstreams[i];
        let path = hc.path.as_deref().unwrap_or(match e.replica.protocol {
            Protocol::OpenAi => "/v1/models",
            Protocol::KserveV2 => "/v2/health/ready",
        });
        let request = up.uri(path.to_owned()).map(|uri| {
            let body = Bytes::new();
            let mut req = Request::new(Full::new(body.clone()));
            *req.method_mut() = Method::GET;
            *req.uri_mut() = uri;
            req.headers_mut().insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_static("switchyard-health"),
            );
            // The same credentials as the replica's traffic: a probe
            // without them would mark a healthy replica down for good.
            up.authorize(&mut req, &body).map(|()| req)
        });
        let client = up.client(&snap.client).clone(); // a private-CA replica's own client
        let (stats, gw) = (Arc::clone(&e.stats), Arc::clone(gw));
        let (hc, id) = ((*hc).clone(), id.clone());
        probes.spawn(async move {
            let ok = match request {
                Ok(Ok(req)) => probe(&client, req, hc.timeout).await,
                Ok(Err(reason)) => {
                    tracing::warn!(replica = %id, %reason, "health probe has no credentials");
                    false
                }
                Err(_) => false,
            };
            let grace = (hc.interval * hc.fall * 2).max(MIN_TRAFFIC_GRACE);
            let now = clock();
            match stats.health.on_probe(ok, now, hc.rise, hc.fall, grace.as_millis() as u64) {
                Some(false) => gw.events.push(
                    "replica_probe_down",
                    id.clone(),
                    format!(
                        "{} health probes failed in a row; out of rotation unless its traffic succeeds",
                        hc.fall
                    ),
                ),
                Some(true) => gw.events.push(
                    "replica_probe_up",
                    id.clone(),
                    format!("{} health probes passed in a row; back, in slow start", hc.rise),
                ),
                None => {}
            }
            id
        });
    }
    due.retain(|id, _| seen.contains(id.as_str()));
    wake
}

/// One probe: a 2xx within `timeout` is healthy; anything else is not.
async fn probe(client: &UpstreamClient, req: Request<Full<Bytes>>, timeout: Duration) -> bool {
    let attempt = async {
        let resp = client.request(req).await.ok()?;
        let ok = resp.status().is_success();
        // Read the (small) body so the connection goes back to the pool.
        resp.into_body().collect().await.ok()?;
        Some(ok)
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(true)))
}

/// A random point within `interval`, so replicas are not probed in step.
fn jitter(interval: Duration) -> Duration {
    Duration::from_millis(fastrand::u64(0..=interval.as_millis() as u64))
}
