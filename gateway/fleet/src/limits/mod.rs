//! Tenants' limits made global through Redis (`global_limits`).
//!
//! Each instance leases a slice of every limit from counters in Redis and
//! admits locally against it, so no request waits on Redis unless its
//! slice is spent (then one script call grants `min(ask, limit − granted)`
//! atomically: the fleet never grants more than the limit). A background
//! task on the app's tracker returns idle slices, charges what answers
//! used beyond their token reservation, renews this instance's lease on its
//! concurrency slots and books spend per UTC day and month; when the
//! instance stops, one last sync hands back everything it holds.
//!
//! # Layout
//! - [`store`]: the connection and each call, bounded in time;
//! - [`scripts`]: the Lua that makes each change atomic;
//! - [`keys`]: the key names;
//! - [`leaser`]: the proxy's `Leaser` seam implemented over the store;
//! - [`sync`]: one tick of the background task.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use switchyard_config::GlobalLimits;
use switchyard_proxy::Proxy;
use switchyard_proxy::tenant_limits::Global;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod keys;
mod leaser;
mod scripts;
mod store;
mod sync;

/// Failed syncs in a row that make the limits degraded.
const DEGRADED_AFTER: u32 = 2;

/// Why fleet limits could not start.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// The client refused `global_limits.redis_url`.
    #[error("global_limits.redis_url: {0}")]
    Url(String),
    /// Fleet mode was already on.
    #[error("global limits are already running")]
    AlreadyOn,
}

/// Turns fleet mode on for `proxy` and starts the sync task on `tasks`,
/// until `stop`. Redis need not be up: the limits turn degraded after two
/// failed syncs and follow their failure mode until one gets through.
pub fn start(
    cfg: &GlobalLimits,
    proxy: Arc<Proxy>,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Result<(), LimitsError> {
    let store = store::Store::new(cfg, instance_id())?;
    let global = Global::new(
        Box::new(leaser::RedisLeaser(store.clone())),
        cfg.slice,
        cfg.on_unavailable,
    );
    if !proxy.tenant_limits().enable_global(global) {
        return Err(LimitsError::AlreadyOn);
    }
    let every = cfg.sync_interval;
    tracing::info!(instance = %store.instance, sync_ms = every.as_millis() as u64, "global limits on");
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed = 0u32;
        loop {
            tokio::select! {
                () = stop.cancelled() => {
                    // Stopping (the listeners have drained): hand back
                    // what this instance holds and book its last spend.
                    sync::tick(&store, &proxy, true).await;
                    break;
                }
                _ = tick.tick() => {}
            }
            let ok = sync::tick(&store, &proxy, false).await;
            failed = if ok { 0 } else { failed + 1 };
            let Some(g) = proxy.tenant_limits().global() else {
                break;
            };
            // Two failed ticks in a row: one slow answer on a busy host is
            // not an outage (a false alarm admits by the failure mode).
            // The first tick that gets through ends it.
            let degraded = failed >= DEGRADED_AFTER;
            if degraded != g.degraded() {
                if degraded {
                    tracing::warn!(
                        "global limits: redis unreachable, limits follow their failure mode"
                    );
                } else {
                    tracing::info!("global limits: redis reachable again, syncing");
                }
                g.set_degraded(degraded);
            }
        }
    });
    Ok(())
}

/// This process's id in the fleet's counters: random, so a restarted
/// instance never inherits the slots of the one before.
fn instance_id() -> String {
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}
