use super::*;

fn counts(requests: u64, errors: u64, ms: u64) -> VersionCounts {
    let mut c = VersionCounts {
        requests,
        errors,
        ..VersionCounts::default()
    };
    c.latency
        .insert(bucket(Duration::from_millis(ms)), requests);
    c
}

#[test]
fn p95_is_within_a_bucket_of_the_true_value() {
    let mut c = VersionCounts::default();
    for ms in 1..=100u64 {
        c.requests += 1;
        *c.latency
            .entry(bucket(Duration::from_millis(ms)))
            .or_default() += 1;
    }
    let p95 = c.p95_ms().unwrap();
    assert!((95.0..=95.0 * 1.19).contains(&p95), "p95 {p95}");
    assert_eq!(VersionCounts::default().p95_ms(), None);
}

#[test]
fn the_window_sums_live_instances_since_their_base_and_survives_a_restart() {
    let base = PerInstance::from([
        ("a".to_owned(), counts(100, 1, 10)),
        ("b".to_owned(), counts(50, 0, 10)),
    ]);
    let now = PerInstance::from([
        ("a".to_owned(), counts(130, 4, 10)),
        // b restarted: counts from zero again, all new.
        ("b".to_owned(), counts(7, 1, 10)),
        // c joined after the window opened.
        ("c".to_owned(), counts(5, 0, 10)),
    ]);
    let w = window(&now, &base);
    assert_eq!((w.requests, w.errors), (30 + 7 + 5, 3 + 1));
    assert_eq!(w.latency.values().sum::<u64>(), 42);
}

#[test]
fn only_tracked_groups_are_counted_and_counts_survive_a_retrack() {
    let c = Counters::default();
    c.observe("chat", "v1", true, Duration::from_millis(5));
    assert!(c.snapshot().is_empty(), "nothing tracked: nothing counted");
    c.track(["chat"]);
    c.observe("chat", "v1", true, Duration::from_millis(5));
    c.observe("chat", "v2", false, Duration::from_millis(5));
    c.observe("other", "v1", true, Duration::from_millis(5));
    c.track(["chat", "embed"]);
    c.observe("chat", "v1", true, Duration::from_millis(5));
    let snap = c.snapshot();
    assert_eq!(snap["chat"]["v1"].requests, 2);
    assert_eq!(snap["chat"]["v2"].errors, 1);
    assert!(!snap.contains_key("other"));
    let json = serde_json::to_string(&snap).unwrap();
    let back: InstanceCounts = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
}
