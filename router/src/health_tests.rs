//! The health state machine (passive, active, slow start) with the clock
//! passed in.

use super::*;

fn fail(h: &Health, now: u64, times: u32) {
    for _ in 0..times {
        h.on_failure(now, false);
    }
}

#[test]
fn consecutive_failures_eject_and_success_resets_the_count() {
    let h = Health::default();
    fail(&h, 100, EJECT_AFTER - 1);
    h.on_success(100);
    fail(&h, 100, EJECT_AFTER - 1);
    assert_eq!(h.state(100), HealthState::Healthy);
    assert!(h.on_failure(100, false));
    assert!(matches!(h.state(101), HealthState::Ejected { .. }));
    assert_eq!(h.admit(101), None);
    assert_eq!(h.ejections(), 1);
}

#[test]
fn one_probe_after_the_ejection_decides() {
    let h = Health::default();
    fail(&h, 0, EJECT_AFTER);
    let after = MAX_EJECTION_MS + 1;
    assert_eq!(h.state(after), HealthState::Probing);
    assert_eq!(h.admit(after), Some(Admission::Probe));
    assert_eq!(h.admit(after), None, "only one probe at a time");
    h.on_success(after);
    assert_eq!(h.state(after), HealthState::Healthy);
    assert_eq!(h.admit(after), Some(Admission::Normal));
}

#[test]
fn a_failed_probe_ejects_again_for_longer_and_never_shorter() {
    let h = Health::default();
    fail(&h, 0, EJECT_AFTER);
    let HealthState::Ejected { until_ms: first } = h.state(1) else {
        panic!()
    };
    let t = first + 1;
    assert_eq!(h.admit(t), Some(Admission::Probe));
    assert_eq!(
        h.last_ejection_reason(),
        Some(EjectionReason::ConsecutiveFailures)
    );
    assert!(h.on_failure(t, true));
    assert_eq!(h.last_ejection_reason(), Some(EjectionReason::FailedProbe));
    let HealthState::Ejected { until_ms: second } = h.state(t) else {
        panic!()
    };
    assert!(
        second - t > first,
        "second ejection is longer: {first} then {}",
        second - t
    );
    assert!(second - t <= MAX_EJECTION_MS);
    // A short cool-down cannot shorten it.
    h.cool_until(t + 10);
    assert_eq!(h.state(t), HealthState::Ejected { until_ms: second });
}

#[test]
fn retry_after_cools_without_needing_a_probe() {
    let h = Health::default();
    h.cool_until(500);
    assert_eq!(h.state(499), HealthState::Ejected { until_ms: 500 });
    assert_eq!(h.state(500), HealthState::Healthy);
    assert_eq!(h.ejections(), 0);
}

#[test]
fn active_checks_rise_and_fall_with_hysteresis() {
    let h = Health::default();
    assert_eq!(h.on_probe(false, 10, 2, 3, 1_000), None);
    assert_eq!(h.on_probe(false, 20, 2, 3, 1_000), None);
    assert_eq!(
        h.state(20),
        HealthState::Healthy,
        "not before `fall` failures"
    );
    assert_eq!(h.on_probe(false, 30, 2, 3, 1_000), Some(false));
    assert_eq!(h.state(30), HealthState::Down);
    assert_eq!(h.admit(30), None);
    assert!(h.active().unwrap().down);
    assert_eq!(
        h.on_probe(true, 40, 2, 3, 1_000),
        None,
        "one good probe is not enough"
    );
    assert_eq!(h.state(40), HealthState::Down);
    assert_eq!(h.on_probe(true, 50, 2, 3, 1_000), Some(true));
    assert_eq!(h.state(50), HealthState::Healthy);
    assert_eq!(h.warming_since(), Some(50), "back from down: slow start");
}

#[test]
fn failing_probes_do_not_take_out_a_replica_serving_traffic() {
    let h = Health::default();
    h.on_success(100);
    for t in [110, 120, 130] {
        h.on_probe(false, t, 2, 3, 1_000);
    }
    assert_eq!(
        h.state(130),
        HealthState::Healthy,
        "traffic succeeded 30 ms ago"
    );
    assert_eq!(
        h.state(1_101),
        HealthState::Down,
        "no success within the grace"
    );
    h.on_success(1_200);
    assert_eq!(h.state(1_200), HealthState::Healthy);
}

#[test]
fn slow_start_ramps_from_a_tenth_to_full_over_the_window() {
    let h = Health::default();
    assert_eq!(h.ramp(5, 10_000), 1.0, "not warming");
    fail(&h, 0, EJECT_AFTER);
    let t = MAX_EJECTION_MS + 1;
    h.admit(t);
    h.on_success(t);
    assert_eq!(h.ramp(t, 10_000), MIN_RAMP);
    assert!((h.ramp(t + 5_000, 10_000) - 0.5).abs() < 1e-9);
    assert_eq!(h.ramp(t + 5_000, 0), 1.0, "window 0: off");
    assert_eq!(h.ramp(t + 10_000, 10_000), 1.0);
    assert!(h.warming_since().is_none(), "done: back on the fast path");
}

#[test]
fn an_unsent_probe_is_given_back() {
    let h = Health::default();
    fail(&h, 0, EJECT_AFTER);
    let t = MAX_EJECTION_MS + 1;
    assert_eq!(h.admit(t), Some(Admission::Probe));
    h.release_probe();
    assert_eq!(h.admit(t), Some(Admission::Probe));
}
