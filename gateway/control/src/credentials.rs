//! The credential refresher: every [`REFRESH_EVERY`] it brings each
//! serving replica's changing credential (a rotated file today; token
//! sources later) up to date, so the request path only ever loads one.

use std::sync::Arc;

use switchyard_proxy::upstream::REFRESH_EVERY;
use tokio_util::sync::CancellationToken;

use crate::reload::Controller;

/// Refreshes until `stop` is cancelled. Follows reloads: each round loads
/// the serving snapshot.
pub async fn run(gw: Arc<Controller>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let snap = gw.proxy().snapshot();
                for up in &snap.upstreams {
                    up.refresh_credentials().await;
                }
            }
            () = stop.cancelled() => return,
        }
    }
}
