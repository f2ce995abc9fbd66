//! The rollout driver: every [`TICK`] it asks [`Rollouts::decide`] what to
//! do at tokio's `now` and applies the actions through the controller, so
//! every step is an ordinary generation (atomic, nothing in flight dropped).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::reload::{Controller, Trigger};
use crate::rollout::{Action, Rollouts};

/// How often the controller looks at its rollouts.
pub const TICK: Duration = Duration::from_millis(200);

/// One look at every rollout, and its decisions applied.
pub fn tick(rollouts: &Rollouts, gw: &Controller) {
    let snap = gw.proxy().snapshot();
    let actions = rollouts.decide(&snap.config, &snap.table, tokio::time::Instant::now());
    for action in actions {
        let result = match action {
            Action::Weights(group, weights) => {
                gw.set_weights(&group, weights, Trigger::Rollout).map(drop)
            }
            Action::Promote(group, version) => {
                gw.promote(&group, &version, Trigger::Rollout).map(drop)
            }
            Action::Event(kind, subject, detail) => {
                gw.events.push(kind, subject, detail);
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "rollout controller could not apply its decision");
        }
    }
}

/// Runs the driver until `stop` is cancelled.
pub async fn run(gw: Arc<Controller>, stop: CancellationToken) {
    let mut tick_every = tokio::time::interval(TICK);
    tick_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick_every.tick() => {
                // Applying a step publishes a generation: blocking work.
                let gw = Arc::clone(&gw);
                let _ = tokio::task::spawn_blocking(move || tick(&gw.rollouts, &gw)).await;
            }
            () = stop.cancelled() => return,
        }
    }
}
