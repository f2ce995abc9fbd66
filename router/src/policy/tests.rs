//! PeakEWMA, weighted, affinity and slow start, over small tables built
//! from real config text and with the clock passed in.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use switchyard_config::{Protocol, load_str};

use crate::health::{Admission, EJECT_AFTER};
use crate::{ReplicaTable, RouteRequest, StatsRegistry, affinity_key};

/// One group `m` with `policy`, one replica per `(id, extra fields)`.
fn table(policy: &str, routing: &str, replicas: &[(&str, &str)]) -> ReplicaTable {
    let mut y = format!(
        "clouds: {{ c: {{ provider: private }} }}\nmodels: [{{ name: m, versions: [{{ name: v1, weight: 100 }}], routing: {{ policy: {policy}{routing} }} }}]\nreplicas:\n"
    );
    for (k, (id, extra)) in replicas.iter().enumerate() {
        writeln!(
            y,
            "  - {{ id: {id}, model: m, cloud: c, url: \"http://127.0.0.1:{}\"{extra} }}",
            2000 + k
        )
        .unwrap();
    }
    ReplicaTable::build(&load_str(&y, &|_| None).unwrap(), &StatsRegistry::new())
}

fn req(key: Option<u64>) -> RouteRequest<'static> {
    RouteRequest {
        model: "m",
        protocol: Protocol::OpenAi,
        clouds: &[],
        affinity_key: key,
        prefix: &[],
        adapter: None,
    }
}

fn first(t: &ReplicaTable, r: &RouteRequest<'_>, seed: u64, now: u64) -> String {
    let ranking = t.rank_at(r, seed, now).unwrap();
    let a = t.admit_at("m", &ranking, &[], now).unwrap();
    a.entry.replica.id.clone()
}

fn shares(t: &ReplicaTable, picks: u64, now: u64) -> HashMap<String, f64> {
    let mut n: HashMap<String, u64> = HashMap::new();
    for k in 0..picks {
        let seed = k.wrapping_mul(0x2545_F491_4F6C_DD1D);
        *n.entry(first(t, &req(None), seed, now)).or_default() += 1;
    }
    n.into_iter()
        .map(|(id, c)| (id, c as f64 / picks as f64))
        .collect()
}

#[test]
fn peak_ewma_prefers_the_faster_replica_at_equal_load() {
    let t = table("least_loaded", "", &[("fast", ""), ("slow", "")]);
    let e = t.entries();
    e[0].stats
        .record_latency_at(Duration::from_millis(20), 1_000);
    e[1].stats
        .record_latency_at(Duration::from_millis(400), 1_000);
    let s = shares(&t, 2_000, 1_000);
    assert_eq!(s.get("fast").copied().unwrap_or(0.0), 1.0, "{s:?}");
    // ... until the fast one is loaded enough that latency x load flips it:
    // 20 ms x 21 in flight > 400 ms x 1.
    let _held: Vec<_> = (0..20)
        .map(|_| e[0].stats.try_acquire(64).unwrap())
        .collect();
    let s = shares(&t, 2_000, 1_000);
    assert_eq!(s.get("slow").copied().unwrap_or(0.0), 1.0, "{s:?}");
}

#[test]
fn a_stale_peak_fades_so_an_idle_replica_is_not_starved() {
    let t = table("least_loaded", "", &[("a", ""), ("b", "")]);
    let e = t.entries();
    e[0].stats
        .record_latency_at(Duration::from_millis(2_000), 1_000);
    e[1].stats
        .record_latency_at(Duration::from_millis(50), 1_000);
    assert_eq!(shares(&t, 500, 1_000).get("a"), None, "a was slow just now");
    // A minute later b is still answering, a has had no traffic.
    e[1].stats
        .record_latency_at(Duration::from_millis(50), 61_000);
    let _busy = e[1].stats.try_acquire(64).unwrap();
    let s = shares(&t, 500, 61_000);
    assert_eq!(s.get("a").copied().unwrap_or(0.0), 1.0, "{s:?}");
}

#[test]
fn a_replica_with_no_samples_competes_on_load() {
    let t = table("least_loaded", "", &[("old", ""), ("new", "")]);
    let e = t.entries();
    e[0].stats
        .record_latency_at(Duration::from_millis(300), 1_000);
    let s = shares(&t, 2_000, 1_000);
    let new = s.get("new").copied().unwrap_or(0.0);
    assert!(
        (0.4..0.6).contains(&new),
        "equal load, unknown latency: {s:?}"
    );
}

#[test]
fn weighted_policy_splits_by_replica_weight() {
    let t = table(
        "weighted",
        "",
        &[
            ("a", ", weight: 1"),
            ("b", ", weight: 3"),
            ("c", ", weight: 6"),
        ],
    );
    let s = shares(&t, 20_000, 1_000);
    for (id, want) in [("a", 0.1), ("b", 0.3), ("c", 0.6)] {
        let got = s.get(id).copied().unwrap_or(0.0);
        assert!((got - want).abs() < 0.02, "{id}: {got} vs {want}");
    }
}

#[test]
fn affinity_sends_a_key_to_the_same_replica_and_spreads_keys() {
    let ids: Vec<(String, &str)> = (0..8).map(|i| (format!("r{i}"), "")).collect();
    let ids: Vec<(&str, &str)> = ids.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    let t = table("affinity", "", &ids);
    let mut owners: HashMap<String, u32> = HashMap::new();
    for session in 0..400u32 {
        let key = affinity_key(format!("session-{session}").as_bytes());
        let owner = first(&t, &req(Some(key)), 1, 1_000);
        for seed in 2..6 {
            assert_eq!(
                first(&t, &req(Some(key)), seed, 1_000),
                owner,
                "same key, same replica"
            );
        }
        *owners.entry(owner).or_default() += 1;
    }
    assert_eq!(
        owners.len(),
        8,
        "keys spread over every replica: {owners:?}"
    );
    assert!(
        owners.values().all(|&n| (20..=80).contains(&n)),
        "{owners:?}"
    );
}

#[test]
fn a_hot_key_spills_under_bounded_load_and_never_over_capacity() {
    let t = table(
        "affinity",
        ", affinity_load_factor: 1.5",
        &[
            ("a", ", max_concurrency: 4"),
            ("b", ", max_concurrency: 4"),
            ("c", ", max_concurrency: 4"),
            ("d", ", max_concurrency: 4"),
        ],
    );
    let key = Some(affinity_key(b"hot"));
    let home = first(&t, &req(key), 0, 1_000);
    let mut held = Vec::new();
    let mut by_replica: HashMap<String, u32> = HashMap::new();
    for seed in 0..16 {
        let ranking = t.rank_at(&req(key), seed, 1_000).unwrap();
        let a = t.admit_at("m", &ranking, &[], 1_000).unwrap();
        *by_replica.entry(a.entry.replica.id.clone()).or_default() += 1;
        held.push(a.guard);
    }
    // Bounded load: no replica ever ran more than 1.5 x the average + 1.
    assert_eq!(
        by_replica.len(),
        4,
        "the hot key spilled to every replica: {by_replica:?}"
    );
    assert!(by_replica.values().all(|&n| n <= 4), "{by_replica:?}");
    drop(held);
    assert_eq!(
        first(&t, &req(key), 9, 1_000),
        home,
        "back home once load drops"
    );
}

#[test]
fn affinity_passes_over_an_ejected_home_and_returns_after() {
    let t = table("affinity", "", &[("a", ""), ("b", ""), ("c", "")]);
    let key = Some(affinity_key(b"user-7"));
    let home = first(&t, &req(key), 0, 1_000);
    let i = t
        .entries()
        .iter()
        .position(|e| e.replica.id == home)
        .unwrap();
    for _ in 0..EJECT_AFTER {
        t.entries()[i].stats.health.on_failure(1_000, false);
    }
    let away = first(&t, &req(key), 0, 1_001);
    assert_ne!(away, home);
    assert_eq!(
        first(&t, &req(key), 5, 1_002),
        away,
        "the stand-in is consistent too"
    );
}

#[test]
fn slow_start_ramps_share_and_capacity_of_a_recovered_replica() {
    let t = table(
        "least_loaded",
        ", slow_start_ms: 10000",
        &[
            ("a", ", max_concurrency: 20"),
            ("b", ", max_concurrency: 20"),
        ],
    );
    let a = &t.entries()[0];
    for _ in 0..EJECT_AFTER {
        a.stats.health.on_failure(0, false);
    }
    // The ejection is over at 40 s; the half-open probe succeeds.
    let back = 40_000;
    assert_eq!(a.stats.health.admit(back), Some(Admission::Probe));
    a.stats.health.on_success(back);
    assert_eq!(a.capacity(back), 2, "10% of 20 slots right after it");
    assert_eq!(a.capacity(back + 5_000), 10);
    // Held slots: capacity is a hard cap during the ramp.
    let ranking = t.rank_at(&req(None), 0, back + 1).unwrap();
    let mut on_a = Vec::new();
    while let Ok(adm) = t.admit_at("m", &ranking, &[1], back + 1) {
        on_a.push(adm.guard);
    }
    assert_eq!(on_a.len(), 2);
    drop(on_a);
    // Its load score is divided by the ramp: with b at 4 of 20 slots, a
    // at 10% looks busier than b; at 50% it looks idler.
    let _b_load: Vec<_> = (0..4)
        .map(|_| t.entries()[1].stats.try_acquire(20).unwrap())
        .collect();
    let share = |at| shares(&t, 1_000, at).get("a").copied().unwrap_or(0.0);
    assert_eq!(share(back), 0.0);
    assert_eq!(share(back + 5_000), 1.0);
    assert_eq!(
        a.capacity(back + 10_000),
        20,
        "full capacity after the window"
    );
}

#[test]
fn weighted_slow_start_holds_back_a_recovered_replica() {
    let t = table(
        "weighted",
        ", slow_start_ms: 10000",
        &[("a", ", weight: 1"), ("b", ", weight: 1")],
    );
    t.entries()[0].stats.health.start_warming(1_000);
    let s = shares(&t, 10_000, 1_000);
    let a = s.get("a").copied().unwrap_or(0.0);
    assert!(a < 0.15, "a ramps from a tenth of its weight: {s:?}");
    let s = shares(&t, 10_000, 11_000);
    let a = s.get("a").copied().unwrap_or(0.0);
    assert!((0.47..0.53).contains(&a), "{s:?}");
}
