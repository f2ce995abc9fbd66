//! Publishes this instance's rollout counts under `P/figures/<id>` every
//! [`EVERY`], bound to a lease of its own, so an instance that dies takes
//! its figures out of the leader's sums within the lease's TTL.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, PutOptions};
use tokio_util::sync::CancellationToken;

use super::Error;
use super::figures::Counters;
use super::store::Keys;

/// How often the counts are published.
pub const EVERY: Duration = Duration::from_secs(1);

/// The publication lease's TTL, s.
pub const TTL_S: i64 = 5;

/// Publishes until `stop`; a failure (etcd away, lease gone) is logged and
/// retried with a new lease on the next round.
pub async fn run(
    mut client: Client,
    prefix: String,
    instance_id: String,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let key = format!("{}{instance_id}", Keys::new(&prefix).figures());
    let mut lease = None;
    let mut every = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => break,
        }
        if let Err(e) = round(&mut client, &key, &counters, &mut lease).await {
            tracing::warn!(error = %e, "publishing rollout figures failed; retrying");
            lease = None;
        }
    }
    if let Some(id) = lease {
        let _ = client.lease_revoke(id).await;
    }
}

async fn round(
    client: &mut Client,
    key: &str,
    counters: &Counters,
    lease: &mut Option<i64>,
) -> Result<(), Error> {
    let id = match *lease {
        Some(id) => {
            let (mut keeper, mut stream) = client.lease_keep_alive(id).await?;
            keeper.keep_alive().await?;
            match stream.message().await? {
                Some(r) if r.ttl() > 0 => id,
                _ => return Err(Error::LeaseLost(format!("figures lease {id} expired"))),
            }
        }
        None => client.lease_grant(TTL_S, None).await?.id(),
    };
    *lease = Some(id);
    let body = serde_json::to_vec(&counters.snapshot())?;
    client
        .put(key, body, Some(PutOptions::new().with_lease(id)))
        .await?;
    Ok(())
}
