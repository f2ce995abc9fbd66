//! Properties of ranking and admission over random tables.

use std::collections::HashSet;
use std::fmt::Write;

use proptest::prelude::*;
use switchyard_config::{Protocol, load_str};

use crate::health::{EJECT_AFTER, clock};
use crate::{ReplicaTable, RouteError, RouteRequest, StatsRegistry};

/// A table of `caps.len()` replicas of group `m`: replica i serves version
/// `v(i % 2)` with `max_concurrency = caps[i]`; versions weigh `w0`, `w1`.
fn table(caps: &[u32], w0: u32, w1: u32) -> ReplicaTable {
    let mut y = format!(
        "clouds: {{ c: {{ provider: private }} }}\nmodels: [{{ name: m, versions: [{{ name: v0, weight: {w0} }}, {{ name: v1, weight: {w1} }}] }}]\nreplicas:\n"
    );
    for (i, cap) in caps.iter().enumerate() {
        writeln!(
            y,
            "  - {{ id: r{i}, model: m, version: v{}, cloud: c, url: \"http://127.0.0.1:{}\", max_concurrency: {cap} }}",
            i % 2,
            1000 + i
        )
        .unwrap();
    }
    ReplicaTable::build(&load_str(&y, &|_| None).unwrap(), &StatsRegistry::new())
}

fn eject(t: &ReplicaTable, i: usize) {
    for _ in 0..EJECT_AFTER {
        t.entries()[i].stats.health.on_failure(clock(), false);
    }
}

const REQ: RouteRequest<'static> = RouteRequest {
    model: "m",
    protocol: Protocol::OpenAi,
    clouds: &[],
    affinity_key: None,
    prefix: &[],
    adapter: None,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_over_max_concurrency(caps in prop::collection::vec(1u32..4, 2..12), seed: u64) {
        let t = table(&caps, 50, 50);
        let mut guards = Vec::new();
        let mut s = seed;
        loop {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let ranking = t.rank(&REQ, s).unwrap();
            match t.admit("m", &ranking, &[]) {
                Ok(a) => guards.push(a.guard),
                Err(RouteError::NoCapacity { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let total: u32 = caps.iter().sum();
        prop_assert_eq!(guards.len() as u32, total, "every slot is usable");
        for e in t.entries() {
            prop_assert!(e.stats.in_flight() <= e.replica.max_concurrency);
        }
    }

    #[test]
    fn never_picks_an_ejected_replica_outside_panic_mode(
        n in 2usize..12,
        ejected in prop::collection::vec(any::<bool>(), 12),
        seed: u64,
    ) {
        let t = table(&vec![4; n], 50, 50);
        let ejected: Vec<usize> = (0..n).filter(|&i| ejected[i]).collect();
        for &i in &ejected {
            eject(&t, i);
        }
        // Panic mode: with fewer than half healthy, ejection is ignored.
        let panic = (n - ejected.len()) * 2 < n;
        for k in 0..50u64 {
            let ranking = t.rank(&REQ, seed ^ k).unwrap();
            let a = t.admit("m", &ranking, &[]).unwrap();
            prop_assert!(panic || !ejected.contains(&a.index), "picked ejected r{}", a.index);
        }
    }

    #[test]
    fn a_retry_goes_to_a_replica_not_yet_tried(n in 2usize..10, seed: u64) {
        let t = table(&vec![8; n], 50, 50);
        let ranking = t.rank(&REQ, seed).unwrap();
        let mut tried = Vec::new();
        for _ in 0..n {
            let a = t.admit("m", &ranking, &tried).unwrap();
            prop_assert!(!tried.contains(&a.index));
            tried.push(a.index);
        }
        prop_assert_eq!(tried.iter().collect::<HashSet<_>>().len(), n);
        prop_assert!(t.admit("m", &ranking, &tried).is_err(), "nothing left once all were tried");
    }

    #[test]
    fn version_weights_hold_within_two_percent(w0 in 1u32..=100, w1 in 1u32..=100, seed: u64) {
        let t = table(&[8, 8, 8, 8], w0, w1);
        let picks = 20_000u64;
        let v0 = (0..picks)
            .filter(|k| {
                let r = t.rank(&REQ, seed.wrapping_add(k.wrapping_mul(0x2545_F491_4F6C_DD1D))).unwrap();
                t.entries()[r.iter().next().unwrap()].replica.version == "v0"
            })
            .count() as f64 / picks as f64;
        let expected = f64::from(w0) / f64::from(w0 + w1);
        prop_assert!((v0 - expected).abs() < 0.02, "v0 share {v0:.4}, expected {expected:.4}");
    }
}

/// `n` replicas of group `w` under the `weighted` policy, weights `weights`.
fn weighted_table(weights: &[u32]) -> ReplicaTable {
    let mut y = String::from(
        "clouds: { c: { provider: private } }\nmodels: [{ name: m, versions: [{ name: v1, weight: 100 }], routing: { policy: weighted } }]\nreplicas:\n",
    );
    for (i, w) in weights.iter().enumerate() {
        writeln!(
            y,
            "  - {{ id: r{i}, model: m, cloud: c, url: \"http://127.0.0.1:{}\", weight: {w} }}",
            1000 + i
        )
        .unwrap();
    }
    ReplicaTable::build(&load_str(&y, &|_| None).unwrap(), &StatsRegistry::new())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The issue asks for ±2% over 10k picks; 20k keeps the check at more
    /// than five standard deviations, so it does not flake.
    #[test]
    fn replica_weights_hold_within_two_percent(
        weights in prop::collection::vec(1u32..=20, 2..6),
        seed: u64,
    ) {
        let t = weighted_table(&weights);
        let picks = 20_000u64;
        let mut got = vec![0u64; weights.len()];
        for k in 0..picks {
            let r = t.rank(&REQ, seed.wrapping_add(k.wrapping_mul(0x2545_F491_4F6C_DD1D))).unwrap();
            let a = t.admit("m", &r, &[]).unwrap();
            got[a.index] += 1;
        }
        let total: u32 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let share = got[i] as f64 / picks as f64;
            let want = f64::from(*w) / f64::from(total);
            prop_assert!((share - want).abs() < 0.02, "r{i}: {share:.4} vs {want:.4}");
        }
    }

    #[test]
    fn weighted_and_affinity_never_pick_an_ejected_replica_outside_panic_mode(
        n in 4usize..10,
        ejected in 0usize..2,
        policy in prop::sample::select(vec!["weighted", "affinity"]),
        seed: u64,
    ) {
        let mut y = format!(
            "clouds: {{ c: {{ provider: private }} }}\nmodels: [{{ name: m, versions: [{{ name: v1, weight: 100 }}], routing: {{ policy: {policy} }} }}]\nreplicas:\n"
        );
        for i in 0..n {
            writeln!(y, "  - {{ id: r{i}, model: m, cloud: c, url: \"http://127.0.0.1:{}\" }}", 1000 + i).unwrap();
        }
        let t = ReplicaTable::build(&load_str(&y, &|_| None).unwrap(), &StatsRegistry::new());
        for i in 0..=ejected {
            eject(&t, i);
        }
        for k in 0..50u64 {
            let req = RouteRequest { affinity_key: Some(seed ^ k), ..REQ };
            let r = t.rank(&req, seed.wrapping_add(k)).unwrap();
            let a = t.admit("m", &r, &[]).unwrap();
            prop_assert!(a.index > ejected, "picked ejected r{}", a.index);
        }
    }
}
