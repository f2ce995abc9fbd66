//! Publishes this instance's rollout counts under `P/figures/<id>` every
//! [`EVERY`], bound to a lease of its own, so an instance that dies takes
//! its figures out of the leader's sums within the lease's TTL. Each round
//! also points the counters at the groups the serving config rolls out and
//! copies their replicas' ejection counts from the replica table.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, PutOptions};
use tokio_util::sync::CancellationToken;

use super::Error;
use switchyard_proxy::Snapshot;

use super::figures::Counters;
use super::store::Keys;

/// How often the counts are published.
pub const EVERY: Duration = Duration::from_secs(1);

/// The publication lease's TTL, s.
pub const TTL_S: i64 = 5;

/// Publishes until `stop`; a failure (etcd away, lease gone) is logged and
/// retried with a new lease on the next round.
/// `refresh` runs before each publication: in the gateway,
/// `|c| follow(c, &proxy.snapshot())`.
pub async fn run<F>(
    mut client: Client,
    prefix: String,
    instance_id: String,
    counters: Arc<Counters>,
    refresh: F,
    stop: CancellationToken,
) where
    F: Fn(&Counters) + Send,
{
    let key = format!("{}{instance_id}", Keys::new(&prefix).figures());
    let mut lease = None;
    let mut every = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => break,
        }
        refresh(&counters);
        if let Err(e) = round(&mut client, &key, &counters, &mut lease).await {
            tracing::warn!(error = %e, "publishing rollout figures failed; retrying");
            lease = None;
        }
    }
    if let Some(id) = lease {
        let _ = client.lease_revoke(id).await;
    }
}

/// Counts the groups `snap` rolls out, with their replicas' ejections.
pub fn follow(counters: &Counters, snap: &Snapshot) {
    let rolled: Vec<&str> = snap
        .config
        .models
        .iter()
        .filter(|m| m.rollout.is_some())
        .map(|m| m.name.as_str())
        .collect();
    counters.track(rolled.iter().copied());
    let mut ejections = std::collections::BTreeMap::<(&str, &str), u64>::new();
    for e in snap.table.entries() {
        let r = &e.replica;
        if rolled.contains(&r.model.as_str()) {
            *ejections.entry((&r.model, &r.version)).or_default() += e.stats.health.ejections();
        }
    }
    for ((group, version), n) in ejections {
        counters.set_ejections(group, version, n);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_proxy::{NoObserver, Proxy};

    use super::*;

    const YAML: &str = r#"
clouds: { c: { provider: private } }
models:
  - name: chat
    versions: [{ name: v1, weight: 100 }, { name: v2, weight: 0 }]
    rollout: { canary: v2 }
  - name: embed
    versions: [{ name: v1, weight: 100 }]
replicas:
  - { id: a, model: chat, version: v1, cloud: c, url: "http://127.0.0.1:9" }
  - { id: b, model: chat, version: v2, cloud: c, url: "http://127.0.0.1:9" }
  - { id: e, model: embed, version: v1, cloud: c, url: "http://127.0.0.1:9" }
"#;

    #[test]
    fn follow_counts_only_the_groups_the_serving_config_rolls_out() {
        let config = switchyard_config::load_str(YAML, &|_| None).unwrap();
        let proxy = Proxy::new(config, Arc::new(NoObserver)).unwrap();
        let counters = Counters::default();
        follow(&counters, &proxy.snapshot());
        counters.observe("chat", "v2", false, Duration::from_millis(3));
        counters.observe("embed", "v1", true, Duration::from_millis(3));
        let snap = counters.snapshot();
        assert_eq!(snap.keys().collect::<Vec<_>>(), ["chat"]);
        assert_eq!(
            (snap["chat"]["v2"].requests, snap["chat"]["v2"].errors),
            (1, 1)
        );
        assert_eq!(
            snap["chat"]["v1"].ejections, 0,
            "ejections copied per version"
        );
    }
}
