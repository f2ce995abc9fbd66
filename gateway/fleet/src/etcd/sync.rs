//! The loop that keeps one instance on the fleet's state: a watch of the
//! prefix from the last applied revision; each batch of events is applied
//! as one change (one generation at most). A compaction that outran the
//! watch (or `POST /admin/reload`) lists the prefix at a revision and
//! applies only the difference. Losing etcd leaves the last good state
//! serving, marks the instance degraded, and retries with backoff, then
//! resumes the watch from the last applied revision.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use etcd_client::{EventType, PutOptions, WatchOptions};
use tokio_util::sync::CancellationToken;

use super::Fleet;
use super::apply::Outcome;
use super::client::FleetClient;
use super::error::FleetError;
use super::state::Desired;
use super::status::{Refusal, RefusalError, doc_hash};

/// First and longest wait between reconnects.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3));

/// What the instance has applied: the desired state and its revision.
struct Applied {
    desired: Desired,
    revision: i64,
}

/// Why a watch ended without an error.
enum End {
    /// The history it needed was compacted away.
    Compacted,
    /// A re-list was asked for.
    Resync,
}

pub(super) async fn run(
    fleet: Arc<Fleet>,
    desired: Desired,
    revision: i64,
    stop: CancellationToken,
) {
    let mut at = Applied { desired, revision };
    let mut backoff = BACKOFF.0;
    let mut resync = false;
    loop {
        let error = tokio::select! {
            () = stop.cancelled() => break,
            e = session(&fleet, &mut at, &mut resync, &mut backoff) => e,
        };
        tracing::warn!(error = %error, "fleet: etcd lost; the last good state keeps serving");
        fleet.set_degraded(Some(error.to_string()));
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF.1);
    }
    // A clean stop: the status key goes now, not after the TTL.
    let lease = fleet.lease.load(Ordering::Relaxed);
    if lease != 0 {
        let client = fleet.client();
        let _ = client.call(client.raw().lease_revoke(lease)).await;
    }
}

/// The status key's lease and its keepalive.
struct Lease {
    id: i64,
    keeper: etcd_client::LeaseKeeper,
    kept: etcd_client::LeaseKeepAliveStream,
    tick: tokio::time::Interval,
}

/// A fresh connection and lease (the old lease may have expired).
async fn connect(fleet: &Fleet) -> Result<(FleetClient, Lease), FleetError> {
    let opts = &fleet.options;
    let client = FleetClient::connect(&opts.endpoint, &opts.prefix).await?;
    *fleet.client.lock().unwrap_or_else(|p| p.into_inner()) = client.clone();
    let ttl = opts.lease_ttl.as_secs().max(2) as i64;
    let id = client.call(client.raw().lease_grant(ttl, None)).await?.id();
    fleet.lease.store(id, Ordering::Relaxed);
    let (keeper, kept) = client.call(client.raw().lease_keep_alive(id)).await?;
    let tick = tokio::time::interval(opts.lease_ttl / 3);
    Ok((
        client,
        Lease {
            id,
            keeper,
            kept,
            tick,
        },
    ))
}

/// One connection: lease, watch, apply; returns only when it broke.
async fn session(
    fleet: &Arc<Fleet>,
    at: &mut Applied,
    resync: &mut bool,
    backoff: &mut Duration,
) -> FleetError {
    let (client, mut lease) = match connect(fleet).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    loop {
        if *resync {
            match client.list().await {
                Ok((next, revision)) => apply(fleet, at, next, revision, revision).await,
                Err(e) => return e,
            }
            *resync = false;
        }
        let watch = WatchOptions::new()
            .with_prefix()
            .with_start_revision(at.revision + 1);
        let stream = match client
            .call(client.raw().watch(client.layout().root(), Some(watch)))
            .await
        {
            Ok(s) => s,
            Err(e) => return e,
        };
        fleet.set_degraded(None);
        if let Err(e) = publish(fleet, &client, lease.id).await {
            return e;
        }
        *backoff = BACKOFF.0;
        match follow(fleet, at, &client, &mut lease, stream).await {
            Ok(End::Compacted) => tracing::info!(
                revision = at.revision,
                "fleet: history compacted; listing the prefix again"
            ),
            Ok(End::Resync) => {}
            Err(e) => return e,
        }
        *resync = true;
    }
}

/// Applies the watch's responses and keeps the lease alive until the
/// watch ends.
async fn follow(
    fleet: &Arc<Fleet>,
    at: &mut Applied,
    client: &FleetClient,
    lease: &mut Lease,
    mut stream: etcd_client::WatchStream,
) -> Result<End, FleetError> {
    loop {
        tokio::select! {
            msg = stream.message() => {
                let resp = match msg {
                    Ok(Some(r)) => r,
                    Ok(None) => return Err(FleetError::Invalid("etcd closed the watch".into())),
                    Err(source) => return Err(etcd_error(client, source)),
                };
                if resp.canceled() {
                    if resp.compact_revision() > 0 {
                        return Ok(End::Compacted);
                    }
                    return Err(FleetError::Invalid(format!("watch canceled: {}", resp.cancel_reason())));
                }
                if events(fleet, at, &resp).await {
                    publish(fleet, client, lease.id).await?;
                }
            }
            _ = lease.tick.tick() => {
                keep_alive(client, &mut lease.keeper, &mut lease.kept).await?;
                // Refreshed with each keepalive too: revisions passed by
                // changes that apply nothing here (status keys) show.
                fleet.live().status.revision = at.revision;
                publish(fleet, client, lease.id).await?;
            }
            () = fleet.resync.notified() => return Ok(End::Resync),
        }
    }
}

/// Applies one watch response; whether it touched anything applied.
async fn events(fleet: &Arc<Fleet>, at: &mut Applied, resp: &etcd_client::WatchResponse) -> bool {
    let layout = fleet.client().layout().clone();
    let mut next = at.desired.clone();
    let (mut relevant, mut revision, mut changed_at) = (false, at.revision, at.revision);
    for ev in resp.events() {
        let Some(kv) = ev.kv() else { continue };
        let key = String::from_utf8_lossy(kv.key());
        revision = revision.max(kv.mod_revision());
        let changed = match ev.event_type() {
            EventType::Put => {
                layout.classify(&key).is_some()
                    && next.put(
                        &layout,
                        &key,
                        &String::from_utf8_lossy(kv.value()),
                        kv.mod_revision(),
                    )
            }
            EventType::Delete => next.delete(&layout, &key),
        };
        if changed {
            // A refusal names the change's revision, not that of other
            // keys (figures, statuses) that arrived in the same batch.
            changed_at = changed_at.max(kv.mod_revision());
        }
        relevant |= changed;
    }
    if !relevant {
        at.revision = revision;
        return false;
    }
    apply(fleet, at, next, revision, changed_at).await;
    true
}

/// Applies `next` (at `revision`; its last change at `changed_at`) over
/// what is applied, off the async workers, and records the outcome in the
/// status.
async fn apply(
    fleet: &Arc<Fleet>,
    at: &mut Applied,
    next: Desired,
    revision: i64,
    changed_at: i64,
) {
    let (f, prev, n) = (Arc::clone(fleet), at.desired.clone(), next.clone());
    let outcome = tokio::task::spawn_blocking(move || f.applier.apply(&prev, &n))
        .await
        .unwrap_or_else(|e| Outcome {
            config_applied: false,
            refused: vec![RefusalError {
                path: String::new(),
                message: format!("internal error while applying: {e}"),
            }],
        });
    {
        let mut live = fleet.live();
        live.status.revision = revision;
        live.config_revision = next.config.as_ref().map_or(0, |d| d.mod_revision);
        if outcome.config_applied {
            live.status.hash = doc_hash(next.text().unwrap_or_default());
            live.status.last_refusal = None;
        }
        if !outcome.refused.is_empty() {
            tracing::warn!(
                revision,
                problems = outcome.refused.len(),
                "fleet: change refused"
            );
            live.status.last_refusal = Some(Refusal {
                revision: changed_at,
                errors: outcome.refused,
            });
        }
    }
    at.desired = next;
    at.revision = revision;
    fleet.applied.send_replace(revision);
}

/// Puts the status key, bound to the lease.
async fn publish(fleet: &Fleet, client: &FleetClient, lease: i64) -> Result<(), FleetError> {
    let status = fleet.status();
    let value = serde_json::to_string(&status).map_err(|e| FleetError::Invalid(e.to_string()))?;
    let key = client.layout().instance(&status.id);
    client
        .call(
            client
                .raw()
                .put(key, value, Some(PutOptions::new().with_lease(lease))),
        )
        .await
        .map(drop)
}

async fn keep_alive(
    client: &FleetClient,
    keeper: &mut etcd_client::LeaseKeeper,
    kept: &mut etcd_client::LeaseKeepAliveStream,
) -> Result<(), FleetError> {
    client.call(keeper.keep_alive()).await?;
    match client.call(kept.message()).await? {
        Some(r) if r.ttl() > 0 => Ok(()),
        _ => Err(FleetError::Invalid("the status lease expired".into())),
    }
}

fn etcd_error(client: &FleetClient, source: etcd_client::Error) -> FleetError {
    FleetError::Etcd {
        endpoint: client.endpoint().to_owned(),
        source,
    }
}

impl Fleet {
    /// Marks the instance degraded (etcd lost) or not; shown in its
    /// status, `/admin/fleet` and the `switchyard_fleet_degraded` gauge.
    pub(super) fn set_degraded(&self, reason: Option<String>) {
        let mut live = self.live();
        live.status.degraded = reason.is_some();
        live.status.degraded_reason = reason;
    }
}
