//! One rollout controller per fleet: leader election on an etcd lease.
//!
//! A candidate creates `P/leader/rollouts` (value: its instance id) bound
//! to a fresh lease, only if the key is absent (a transaction on its
//! `create_revision`); the winner keeps the lease alive every TTL/3. A
//! keepalive that fails or comes back expired ends the term at once: the
//! driver stops between two awaits, and every write it might still have in
//! flight is fenced on the key's value and lease ([`store::save`]), so a
//! deposed leader cannot write. A leader that dies stops renewing; the key
//! goes with its lease within the TTL, and the next candidate's attempt
//! (every [`RETRY`]) wins.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use switchyard_config::Config;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::rollouts::Error;
use crate::rollouts::driver::{self, wall_ms};
use crate::rollouts::store::{Fence, Keys};

/// How often a candidate tries to become leader.
pub const RETRY: Duration = Duration::from_millis(500);

/// The leader lease's TTL, s: the longest a fleet goes without a rollout
/// controller after its leader dies.
pub const TTL_S: i64 = 5;

/// One term as leader. Dropping it stops the keepalive (the lease then
/// expires within its TTL, as if the process died); [`Term::resign`]
/// hands over at once.
#[derive(Debug)]
pub struct Term {
    fence: Fence,
    lost: CancellationToken,
    /// The keepalive task; dropping the set aborts it.
    keeper: JoinSet<()>,
}

impl Term {
    /// What this leader's writes are fenced on.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Cancelled when the lease is lost.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Ends the term and revokes its lease, so the next candidate wins now.
    pub async fn resign(self, client: &mut Client) {
        self.lost.cancel();
        let _ = client.lease_revoke(self.fence.lease).await;
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.lost.cancel();
        self.keeper.abort_all();
    }
}

/// Tries until this instance leads (`Some`) or `stop` is cancelled (`None`).
pub async fn campaign(
    client: &mut Client,
    keys: &Keys,
    instance_id: &str,
    ttl_s: i64,
    stop: &CancellationToken,
) -> Result<Option<Term>, Error> {
    let key = keys.leader();
    loop {
        let lease = client.lease_grant(ttl_s, None).await?.id();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                instance_id,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        if client.txn(txn).await?.succeeded() {
            let lost = CancellationToken::new();
            let mut keeper = JoinSet::new();
            keeper.spawn(keep(client.clone(), lease, ttl_s, lost.clone()));
            let fence = Fence {
                key,
                id: instance_id.to_owned(),
                lease,
            };
            return Ok(Some(Term {
                fence,
                lost,
                keeper,
            }));
        }
        let _ = client.lease_revoke(lease).await;
        tokio::select! {
            () = tokio::time::sleep(RETRY) => {}
            () = stop.cancelled() => return Ok(None),
        }
    }
}

/// Keeps `lease` alive every TTL/3; the first failure cancels `lost`.
async fn keep(mut client: Client, lease: i64, ttl_s: i64, lost: CancellationToken) {
    let every = Duration::from_millis((ttl_s.max(1) as u64) * 1000 / 3);
    let renewed = async {
        let (mut keeper, mut stream) = client.lease_keep_alive(lease).await?;
        loop {
            tokio::time::sleep(every).await;
            let answer = tokio::time::timeout(every, async {
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await;
            match answer {
                Ok(Ok(Some(r))) if r.ttl() > 0 => {}
                Ok(Err(e)) => return Err(Error::from(e)),
                _ => return Err(Error::LeaseLost(format!("lease {lease} not renewed"))),
            }
        }
    };
    tokio::select! {
        r = renewed => {
            let e: Result<(), Error> = r;
            if let Err(e) = e {
                tracing::warn!(error = %e, "rollout leadership lost");
            }
            lost.cancel();
        }
        () = lost.cancelled() => {}
    }
}

/// The instance id leading the fleet's rollouts now, if any.
pub async fn current(client: &mut Client, prefix: &str) -> Result<Option<String>, Error> {
    let resp = client.get(Keys::new(prefix).leader(), None).await?;
    Ok(resp
        .kvs()
        .first()
        .and_then(|kv| kv.value_str().ok().map(str::to_owned)))
}

/// Campaigns, and while leading runs the rollout driver on `config()`
/// (the config source's document, before weight overrides) every
/// [`driver::TICK`]; campaigns again after a lost lease. Resigns on `stop`.
/// `ttl_s`: the leader lease's TTL ([`TTL_S`] in the gateway).
pub async fn run<F>(
    mut client: Client,
    prefix: String,
    instance_id: String,
    ttl_s: i64,
    config: F,
    stop: CancellationToken,
) where
    F: Fn() -> Arc<Config> + Send + Sync,
{
    let keys = Keys::new(&prefix);
    loop {
        let term = match campaign(&mut client, &keys, &instance_id, ttl_s, &stop).await {
            Ok(Some(term)) => term,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "rollout leader election failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        tracing::info!(instance = %instance_id, "leading the fleet's rollouts");
        lead(&mut client, &keys, &term, &config, &stop).await;
        // Lost or stopping: revoke what may be left of the lease (a
        // renewal that timed out may not have expired it), so the next
        // leader need not wait out the TTL.
        term.resign(&mut client).await;
        if stop.is_cancelled() {
            return;
        }
    }
}

/// The driver, while `term` lasts.
async fn lead<F: Fn() -> Arc<Config>>(
    client: &mut Client,
    keys: &Keys,
    term: &Term,
    config: &F,
    stop: &CancellationToken,
) {
    let lost = term.lost();
    let mut every = tokio::time::interval(driver::TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = lost.cancelled() => return,
            () = stop.cancelled() => return,
        }
        let config = config();
        tokio::select! {
            r = driver::tick(client, keys, term.fence(), &config, wall_ms()) => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "rollout tick failed; retrying");
                }
            }
            () = lost.cancelled() => return,
        }
    }
}
