//! Turns passive health changes into events for operators: a replica
//! ejected (and why, and for how long), and back in rotation.
//!
//! Ejection is decided inside the router, on the request path, where there
//! is no place to report to; this loop watches the replica table instead
//! (four times a second, a few atomic loads per replica) and records
//! transitions in the event feed. Active-check up/down events come from the
//! probe loop itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_router::{EjectionReason, HealthState, clock};

use tokio_util::sync::CancellationToken;

use crate::reload::Controller;

/// How often the table is looked at.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// Watches until `stop` is cancelled.
pub async fn run(gw: Arc<Controller>, stop: CancellationToken) {
    let mut last: HashMap<String, bool> = HashMap::new();
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => look(&gw, &mut last),
            () = stop.cancelled() => return,
        }
    }
}

/// One look: `last` maps replica id to "was ejected".
fn look(gw: &Controller, last: &mut HashMap<String, bool>) {
    let snap = gw.proxy().snapshot();
    let now = clock();
    let mut seen = HashMap::with_capacity(snap.table.entries().len());
    for e in snap.table.entries() {
        let health = &e.stats.health;
        let state = health.state(now);
        // Probing is still out of rotation: only a good probe ends it.
        let out = matches!(state, HealthState::Ejected { .. } | HealthState::Probing);
        let id = &e.replica.id;
        match (last.get(id).copied(), out, state) {
            (Some(false), true, HealthState::Ejected { until_ms }) => {
                let why = match health.last_ejection_reason() {
                    Some(EjectionReason::FailedProbe) => "its half-open probe failed",
                    Some(EjectionReason::ConsecutiveFailures) => "consecutive failures",
                    None => "Retry-After from the replica",
                };
                gw.events.push(
                    "replica_ejected",
                    id.clone(),
                    format!(
                        "out of rotation for {} ms: {why} (ejections so far: {})",
                        until_ms.saturating_sub(now),
                        health.ejections()
                    ),
                );
            }
            (Some(true), false, _) => gw.events.push(
                "replica_recovered",
                id.clone(),
                "back in rotation".to_owned(),
            ),
            _ => {}
        }
        seen.insert(id.clone(), out);
    }
    *last = seen;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_ejection_is_one_event_with_its_reason() {
        let config = switchyard_config::load_str(
            r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r1, model: m, cloud: c, url: "http://127.0.0.1:1" }]
"#,
            &|_| None,
        )
        .unwrap();
        let gw = Controller::for_tests(config);
        let mut last = HashMap::new();
        look(&gw, &mut last);
        let snap = gw.proxy().snapshot();
        let health = &snap.table.entries()[0].stats.health;
        for _ in 0..5 {
            health.on_failure(clock(), false);
        }
        look(&gw, &mut last);
        look(&gw, &mut last);
        let kinds = |gw: &Controller| -> Vec<&'static str> {
            gw.events.since(0).iter().map(|e| e.kind).collect()
        };
        assert_eq!(
            kinds(&gw),
            ["replica_ejected"],
            "one event, not one per look"
        );
        assert!(
            gw.events.since(0)[0]
                .detail
                .contains("consecutive failures")
        );
    }
}
