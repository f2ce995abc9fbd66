//! The loops that feed discovered members into the controller: the
//! lease sweeper (expired registrations leave the table), the DNS
//! resolver (each DNS template's name re-resolved on its TTL) and the
//! Kubernetes EndpointSlice list + watch ([`kubernetes`]). Both go
//! through the controller's one `publish`, on a blocking thread like the
//! other triggers (a publish builds upstream clients).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_config::{DiscoverySource, DnsRecord};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::reload::Controller;

pub mod dns;
pub mod kubernetes;
pub mod slices;

/// How often leases are checked: a member whose lease ran out leaves
/// rotation within this (the 1 s target, with room for the publish).
pub const SWEEP: Duration = Duration::from_millis(100);

/// How often the DNS loop looks at the serving config for new or changed
/// templates, when no resolution is due sooner.
pub(crate) const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// Expires leases every [`SWEEP`] until `stop` is cancelled.
pub async fn sweep(gw: Arc<Controller>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {
                let now = Instant::now();
                if gw.has_expired_leases(now) {
                    let gw = Arc::clone(&gw);
                    let _ = tokio::task::spawn_blocking(move || gw.expire_leases(now)).await;
                }
            }
        }
    }
}

/// One DNS template as the loop resolves it.
#[derive(Clone, PartialEq)]
struct Spec {
    name: String,
    record: DnsRecord,
    port: u16,
    nameserver: Option<std::net::SocketAddr>,
    min_refresh: Duration,
    max_refresh: Duration,
}

/// The DNS templates of the serving config.
fn specs(gw: &Controller) -> HashMap<String, Spec> {
    let snap = gw.proxy().snapshot();
    snap.config
        .templates
        .iter()
        .filter_map(|t| match &t.discovery.as_ref()?.source {
            DiscoverySource::Dns {
                name,
                record,
                nameserver,
                min_refresh,
                max_refresh,
                ..
            } => Some((
                t.id.clone(),
                Spec {
                    name: name.clone(),
                    record: *record,
                    port: t.member_port(),
                    nameserver: *nameserver,
                    min_refresh: *min_refresh,
                    max_refresh: *max_refresh,
                },
            )),
            DiscoverySource::Registration { .. } | DiscoverySource::Kubernetes { .. } => None,
        })
        .collect()
}

/// Resolves every DNS template's name when due, until `stop` is cancelled:
/// next after the answer's TTL, within `min_refresh..=max_refresh`; after
/// a failure or an empty answer, after `min_refresh`, the last good
/// members serving meanwhile.
pub async fn run(gw: Arc<Controller>, stop: CancellationToken) {
    let mut due: HashMap<String, (Spec, Instant)> = HashMap::new();
    let mut running: JoinSet<(String, Spec, Result<dns::Answer, String>)> = JoinSet::new();
    let mut busy: std::collections::HashSet<String> = Default::default();
    let mut wake = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(Ok((id, spec, result))) = running.join_next() => {
                busy.remove(&id);
                // A reload changed or removed the template meanwhile: this
                // answer is for settings no longer serving; the new ones are
                // resolved on the next look.
                if due.get(&id).is_none_or(|(s, _)| *s != spec) {
                    wake = Instant::now();
                    continue;
                }
                let next = Instant::now() + settle(&gw, &id, &spec, result).await;
                if let Some(entry) = due.get_mut(&id) {
                    entry.1 = next;
                }
                wake = wake.min(next);
            }
            () = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                let current = specs(&gw);
                due.retain(|id, (spec, _)| current.get(id) == Some(spec));
                for (id, spec) in current {
                    due.entry(id).or_insert((spec, now));
                }
                wake = now + LOOK_AGAIN;
                for (id, (spec, at)) in &due {
                    if *at <= now && busy.insert(id.clone()) {
                        let (id, spec) = (id.clone(), spec.clone());
                        running.spawn(async move {
                            let result = dns::resolve(&spec.name, spec.record, spec.port, spec.nameserver).await;
                            (id, spec, result)
                        });
                    } else if *at > now {
                        wake = wake.min(*at);
                    }
                }
            }
        }
    }
    running.shutdown().await;
}

/// Applies one resolution; returns how long until the next.
async fn settle(
    gw: &Arc<Controller>,
    id: &str,
    spec: &Spec,
    result: Result<dns::Answer, String>,
) -> Duration {
    let (gw, id, name) = (Arc::clone(gw), id.to_owned(), spec.name.clone());
    match result {
        Ok(answer) => {
            let next = answer.ttl.clamp(spec.min_refresh, spec.max_refresh);
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = gw.set_dns_members(&id, &name, &answer.addrs) {
                    gw.dns_failed(&id, &name, format!("members could not be applied: {e}"));
                }
            })
            .await;
            next
        }
        Err(error) => {
            let _ = tokio::task::spawn_blocking(move || gw.dns_failed(&id, &name, error)).await;
            spec.min_refresh
        }
    }
}
