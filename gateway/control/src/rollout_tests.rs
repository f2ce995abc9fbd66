//! The rollout decision on an injected clock: no sleeps, one outcome each.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_config::Config;
use switchyard_router::{ReplicaTable, StatsRegistry};
use tokio::time::Instant;

use super::*;

const YAML: &str = r#"
clouds: { c: { provider: private } }
models:
  - name: m
    versions: [{ name: v1, weight: 100 }, { name: v2, weight: 0 }]
    rollout: { canary: v2, steps: [20, 100], step_interval_ms: 1000, min_requests: 4,
               max_error_rate_increase: 0.1, max_p95_ratio: 5 }
replicas:
  - { id: a, model: m, version: v1, cloud: c, url: "http://127.0.0.1:9" }
  - { id: b, model: m, version: v2, cloud: c, url: "http://127.0.0.1:9" }
"#;

/// What the controller would do with `actions`: weights and promotes
/// change the config; events are left out.
fn apply(config: &mut Config, actions: &[Action]) {
    for a in actions {
        let weights = match a {
            Action::Weights(_, w) => w.clone(),
            Action::Promote(_, v) => BTreeMap::from([(v.clone(), 100)]),
            Action::Event(..) => continue,
        };
        for v in &mut config.models[0].versions {
            v.weight = weights.get(&v.name).copied().unwrap_or(0);
        }
    }
}

fn events(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(kind, ..) => Some(*kind),
            _ => None,
        })
        .collect()
}

fn setup() -> (Rollouts, Config, ReplicaTable) {
    let config = switchyard_config::load_str(YAML, &|_| None).unwrap();
    let table = ReplicaTable::build(&config, &StatsRegistry::new());
    (Rollouts::default(), config, table)
}

/// Starts the rollout at `t0` and returns once its first step serves.
fn first_step(r: &Rollouts, config: &mut Config, table: &ReplicaTable, t0: Instant) {
    let actions = r.decide(config, table, t0);
    assert_eq!(
        actions,
        [Action::Weights(
            "m".into(),
            BTreeMap::from([("v1".into(), 80), ("v2".into(), 20)])
        )]
    );
    apply(config, &actions);
    let actions = r.decide(config, table, t0);
    assert_eq!(events(&actions), ["rollout_step"], "the window opens");
}

#[test]
fn healthy_figures_wait_out_the_step_then_promote() {
    let (r, mut config, table) = setup();
    let t0 = Instant::now();
    first_step(&r, &mut config, &table, t0);
    for _ in 0..5 {
        r.observe("m", "v1", true, Duration::from_millis(10));
        r.observe("m", "v2", true, Duration::from_millis(11));
    }
    let early = r.decide(&config, &table, t0 + Duration::from_millis(999));
    assert!(
        early.is_empty(),
        "the step's interval is not over: {early:?}"
    );
    let done = r.decide(&config, &table, t0 + Duration::from_millis(1000));
    assert_eq!(done[0], Action::Promote("m".into(), "v2".into()));
    assert_eq!(events(&done), ["rollout_completed"]);
    assert_eq!(r.view()[0].phase, Phase::Completed);
}

#[test]
fn too_few_requests_extend_the_step_instead_of_judging() {
    let (r, mut config, table) = setup();
    let t0 = Instant::now();
    first_step(&r, &mut config, &table, t0);
    r.observe("m", "v2", true, Duration::from_millis(10));
    let later = r.decide(&config, &table, t0 + Duration::from_secs(5));
    assert!(later.is_empty(), "{later:?}");
    let last = r.view()[0].history.last().unwrap().action;
    assert_eq!(last, "extend");
}

#[test]
fn a_failing_canary_rolls_back_at_once() {
    let (r, mut config, table) = setup();
    let t0 = Instant::now();
    first_step(&r, &mut config, &table, t0);
    for _ in 0..5 {
        r.observe("m", "v1", true, Duration::from_millis(10));
        r.observe("m", "v2", false, Duration::from_millis(10));
    }
    // Well inside the step's interval: a breach does not wait for it.
    let actions = r.decide(&config, &table, t0 + Duration::from_millis(10));
    assert_eq!(
        actions[0],
        Action::Weights("m".into(), BTreeMap::from([("v1".into(), 100)]))
    );
    assert_eq!(events(&actions), ["rollback"]);
    assert!(matches!(r.view()[0].phase, Phase::RolledBack { .. }));
}

#[test]
fn an_operator_changing_the_weights_takes_over() {
    let (r, mut config, table) = setup();
    let t0 = Instant::now();
    first_step(&r, &mut config, &table, t0);
    config.models[0].versions[1].weight = 50;
    let actions = r.decide(&config, &table, t0 + Duration::from_millis(10));
    assert_eq!(events(&actions), ["rollout_overridden"]);
    assert_eq!(r.view()[0].phase, Phase::Overridden);
}
