use std::time::Duration;

use super::*;
use crate::rollouts::figures::{VersionCounts, bucket};

fn spec() -> Rollout {
    Rollout {
        canary: "v2".into(),
        baseline: "v1".into(),
        steps: vec![10, 50, 100],
        step_interval: Duration::from_secs(10),
        min_requests: 20,
        max_error_rate_increase: 0.02,
        max_p95_ratio: 1.5,
    }
}

fn counts(requests: u64, errors: u64, ms: u64) -> VersionCounts {
    VersionCounts {
        requests,
        errors,
        ejections: 0,
        latency: [(bucket(Duration::from_millis(ms)), requests)].into(),
    }
}

/// One instance `a` with these cumulative counts per version.
fn seen<'a>(
    weights: Option<&'a WeightsDoc>,
    applied: bool,
    canary: VersionCounts,
    baseline: VersionCounts,
    now_ms: u64,
) -> Observed<'a> {
    Observed {
        weights,
        applied,
        counts: BTreeMap::from([
            (
                "v2".to_owned(),
                PerInstance::from([("a".to_owned(), canary)]),
            ),
            (
                "v1".to_owned(),
                PerInstance::from([("a".to_owned(), baseline)]),
            ),
        ]),
        source_weights: vec![("v1".into(), 100), ("v2".into(), 0)],
        now_ms,
    }
}

fn zero() -> VersionCounts {
    VersionCounts::default()
}

/// Drives a fresh rollout to an applied step 0 at t=1000 with the given base.
fn applied_step0(base: (VersionCounts, VersionCounts)) -> (Record, WeightsDoc) {
    let Effect::SaveAndWrite(rec, doc) =
        decide(&spec(), None, &seen(None, false, zero(), zero(), 0))
    else {
        panic!("a new rollout writes its first step");
    };
    assert_eq!(
        doc.weights,
        BTreeMap::from([("v2".into(), 10), ("v1".into(), 90)])
    );
    assert_eq!(
        decide(
            &spec(),
            Some(&rec),
            &seen(Some(&doc), false, zero(), zero(), 500)
        ),
        Effect::Nothing,
        "waits for every instance"
    );
    let Effect::Save(rec) = decide(
        &spec(),
        Some(&rec),
        &seen(Some(&doc), true, base.0, base.1, 1000),
    ) else {
        panic!("the window opens once applied");
    };
    assert_eq!(rec.applied_ms, Some(1000));
    (rec, doc)
}

#[test]
fn a_step_advances_on_window_figures_only_after_its_interval() {
    let (rec, doc) = applied_step0((counts(1000, 50, 10), counts(5000, 250, 10)));
    // Within bounds but the interval is not over.
    let s = seen(
        Some(&doc),
        true,
        counts(1030, 50, 10),
        counts(5300, 250, 10),
        5000,
    );
    assert_eq!(decide(&spec(), Some(&rec), &s), Effect::Nothing);
    // Over: the window (30 vs 300, no errors) passes, though the
    // cumulative counts (5 % errors on both sides) would too.
    let s = seen(
        Some(&doc),
        true,
        counts(1030, 50, 10),
        counts(5300, 250, 10),
        11_000,
    );
    let Effect::SaveAndWrite(next, w) = decide(&spec(), Some(&rec), &s) else {
        panic!("advance")
    };
    assert_eq!((next.step, next.percent, next.applied_ms), (1, 50, None));
    assert_eq!(
        w.weights,
        BTreeMap::from([("v2".into(), 50), ("v1".into(), 50)])
    );
    assert_eq!(next.history.last().unwrap().canary.requests, 30);
}

#[test]
fn a_breach_in_the_window_rolls_back_and_a_rolled_back_rollout_stays_so() {
    let (rec, doc) = applied_step0((zero(), zero()));
    let s = seen(
        Some(&doc),
        true,
        counts(40, 10, 10),
        counts(400, 0, 10),
        2000,
    );
    let Effect::SaveAndWrite(back, w) = decide(&spec(), Some(&rec), &s) else {
        panic!("rollback")
    };
    assert_eq!(back.state, RunState::RolledBack);
    assert_eq!(w.weights, BTreeMap::from([("v1".into(), 100)]));
    // Read again later (a restart, a new leader): nothing starts over.
    let s = seen(
        Some(&w),
        true,
        counts(40, 10, 10),
        counts(900, 0, 10),
        99_000,
    );
    assert_eq!(decide(&spec(), Some(&back), &s), Effect::Nothing);
}

#[test]
fn slow_canary_and_ejected_canary_roll_back() {
    let (rec, doc) = applied_step0((zero(), zero()));
    let s = seen(
        Some(&doc),
        true,
        counts(40, 0, 100),
        counts(400, 0, 10),
        2000,
    );
    assert!(
        matches!(decide(&spec(), Some(&rec), &s), Effect::SaveAndWrite(r, _) if r.state == RunState::RolledBack)
    );
    let mut ejected = counts(3, 0, 10);
    ejected.ejections = 1;
    let s = seen(Some(&doc), true, ejected, counts(4, 0, 10), 2000);
    assert!(
        matches!(decide(&spec(), Some(&rec), &s), Effect::SaveAndWrite(r, _) if r.state == RunState::RolledBack)
    );
}

#[test]
fn short_of_data_extends_once_and_foreign_weights_pause() {
    let (rec, doc) = applied_step0((zero(), zero()));
    let s = seen(
        Some(&doc),
        true,
        counts(3, 0, 10),
        counts(400, 0, 10),
        20_000,
    );
    let Effect::Save(ext) = decide(&spec(), Some(&rec), &s) else {
        panic!("extend")
    };
    assert_eq!(ext.last_decision().unwrap().action, "extend");
    assert_eq!(
        decide(&spec(), Some(&ext), &s),
        Effect::Nothing,
        "logged once per step"
    );
    let mut by_hand = doc.clone();
    by_hand.weights = BTreeMap::from([("v1".into(), 100)]);
    let s = seen(Some(&by_hand), true, zero(), zero(), 21_000);
    let mut same_by_an_operator = doc.clone();
    same_by_an_operator.trigger = "admin".into();
    let s2 = seen(Some(&same_by_an_operator), true, zero(), zero(), 21_000);
    assert!(
        matches!(decide(&spec(), Some(&ext), &s2), Effect::Save(r) if r.state == RunState::Paused)
    );
    let Effect::Save(p) = decide(&spec(), Some(&ext), &s) else {
        panic!("pause")
    };
    assert_eq!(p.state, RunState::Paused);
}

#[test]
fn the_last_step_promotes_and_a_changed_declaration_starts_over() {
    let (mut rec, _) = applied_step0((zero(), zero()));
    rec.step = 1;
    rec.percent = 50;
    let doc = WeightsDoc {
        weights: rec.weights(&spec()),
        source_weights: vec![],
        trigger: "rollout".into(),
        stable: None,
    };
    let s = seen(
        Some(&doc),
        true,
        counts(100, 0, 10),
        counts(100, 0, 10),
        20_000,
    );
    let Effect::SaveAndWrite(done, w) = decide(&spec(), Some(&rec), &s) else {
        panic!("promote")
    };
    assert_eq!((done.state, done.percent), (RunState::Promoted, 100));
    assert_eq!(
        (w.weights, w.stable),
        (BTreeMap::from([("v2".into(), 100)]), Some("v2".into()))
    );
    let mut other = spec();
    other.steps = vec![20, 100];
    let Effect::SaveAndWrite(again, w) = decide(&other, Some(&done), &s) else {
        panic!("restart")
    };
    assert_eq!(
        (again.step, again.state, w.weights["v2"]),
        (0, RunState::Running, 20)
    );
}
