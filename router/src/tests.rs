//! Routing decisions over small tables built from real config text.

use switchyard_config::{Protocol, load_str};

use super::*;

fn table(yaml: &str) -> ReplicaTable {
    let cfg = load_str(yaml, &|_| None).unwrap();
    ReplicaTable::build(&cfg, &StatsRegistry::new())
}

const TWO_VERSIONS: &str = r#"
clouds: { c: { provider: private } }
models:
  - name: chat
    versions: [{ name: v1, weight: 80 }, { name: v2, weight: 20 }]
    fallbacks: [small]
  - name: small
    versions: [{ name: v1, weight: 100 }]
  - name: triton
    versions: [{ name: v1, weight: 100 }]
replicas:
  - { id: a, model: chat, version: v1, cloud: c, url: "http://127.0.0.1:1", max_concurrency: 2 }
  - { id: b, model: chat, version: v1, cloud: c, url: "http://127.0.0.1:2", max_concurrency: 2 }
  - { id: c, model: chat, version: v2, cloud: c, url: "http://127.0.0.1:3", max_concurrency: 1 }
  - { id: s, model: small, cloud: c, url: "http://127.0.0.1:4", max_concurrency: 1 }
  - { id: t, model: triton, cloud: c, url: "http://127.0.0.1:5", protocol: kserve_v2 }
"#;

fn req(model: &str) -> RouteRequest<'_> {
    RouteRequest {
        model,
        protocol: Protocol::OpenAi,
        clouds: &[],
        affinity_key: None,
        prefix: &[],
        adapter: None,
    }
}

fn ids(t: &ReplicaTable, r: &Ranking) -> Vec<String> {
    r.iter()
        .map(|i| t.entries()[i].replica.id.clone())
        .collect()
}

#[test]
fn version_weights_are_respected() {
    let t = table(TWO_VERSIONS);
    let n = 20_000u64;
    let v2 = (0..n)
        .filter(|&i| {
            let r = t
                .rank(&req("chat"), i.wrapping_mul(0x2545_F491_4F6C_DD1D))
                .unwrap();
            t.entries()[r.iter().next().unwrap()].replica.version == "v2"
        })
        .count() as f64;
    let share = v2 / n as f64;
    assert!((0.18..0.22).contains(&share), "v2 share {share}");
}

#[test]
fn ranking_spills_to_sibling_version_then_fallback_group() {
    let t = table(TWO_VERSIONS);
    let r = t.rank(&req("chat"), 7).unwrap();
    let ids = ids(&t, &r);
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[3], "s", "fallback group comes last: {ids:?}");
}

#[test]
fn pinned_version_gets_only_that_version() {
    let t = table(TWO_VERSIONS);
    let r = t.rank(&req("chat@v2"), 1).unwrap();
    assert_eq!(ids(&t, &r), vec!["c"]);
    let err = t.rank(&req("chat@v9"), 1).unwrap_err();
    assert_eq!(
        err,
        RouteError::UnknownVersion {
            group: "chat".into(),
            version: "v9".into()
        }
    );
}

#[test]
fn unknown_model_and_wrong_protocol_are_distinct_errors() {
    let t = table(TWO_VERSIONS);
    assert!(matches!(
        t.rank(&req("gpt-9"), 1),
        Err(RouteError::UnknownModel { .. })
    ));
    assert!(matches!(
        t.rank(&req("triton"), 1),
        Err(RouteError::WrongProtocol { .. })
    ));
    let kserve = RouteRequest {
        model: "triton",
        protocol: Protocol::KserveV2,
        clouds: &[],
        affinity_key: None,
        prefix: &[],
        adapter: None,
    };
    assert_eq!(ids(&t, &t.rank(&kserve, 1).unwrap()), vec!["t"]);
}

#[test]
fn least_loaded_prefers_idle_replicas_and_admit_skips_full_ones() {
    let t = table(TWO_VERSIONS);
    let pinned = req("chat@v1");
    // Fill `a` completely.
    let a = &t.entries()[0];
    let _g1 = a.stats.try_acquire(2).unwrap();
    let _g2 = a.stats.try_acquire(2).unwrap();
    for seed in 0..50 {
        let r = t.rank(&pinned, seed).unwrap();
        assert_eq!(ids(&t, &r)[0], "b", "the idle replica ranks first");
        let admitted = t.admit("chat@v1", &r, &[]).unwrap();
        assert_eq!(admitted.entry.replica.id, "b");
    }
    // Fill `b` too: nothing left for the pinned version.
    let b = &t.entries()[1];
    let _g3 = b.stats.try_acquire(2).unwrap();
    let _g4 = b.stats.try_acquire(2).unwrap();
    let r = t.rank(&pinned, 3).unwrap();
    assert!(matches!(
        t.admit("chat@v1", &r, &[]),
        Err(RouteError::NoCapacity { .. })
    ));
    // Unpinned traffic spills to v2 and then the fallback group.
    let r = t.rank(&req("chat"), 3).unwrap();
    let first = t.admit("chat", &r, &[]).unwrap();
    assert_eq!(first.entry.replica.id, "c");
    let second = t.admit("chat", &r, &[]).unwrap();
    assert_eq!(second.entry.replica.id, "s");
}

#[test]
fn a_group_retry_stays_in_the_group_and_may_reuse_tried_replicas() {
    let t = table(TWO_VERSIONS);
    let r = t.rank(&req("chat"), 3).unwrap();
    let all: Vec<usize> = r.iter().collect();
    let chat: Vec<usize> = all[..3].to_vec();
    // Every chat replica tried: the group retry still finds one of them.
    let again = t.admit_group("chat", &r, "chat").unwrap();
    assert!(chat.contains(&again.index));
    assert_eq!(again.entry.replica.model, "chat");
    drop(again);
    // A full group is not answered from the fallback.
    let guards: Vec<_> = chat
        .iter()
        .flat_map(|&i| {
            let e = &t.entries()[i];
            std::iter::from_fn(|| e.stats.try_acquire(e.capacity(clock())))
        })
        .collect();
    assert!(t.admit_group("chat", &r, "chat").is_err());
    drop(guards);
    // `admit_where_at` skips what the predicate refuses: here, all of chat.
    let only_small = t
        .admit_where_at("chat", &r, |i| !chat.contains(&i), clock())
        .unwrap();
    assert_eq!(only_small.entry.replica.id, "s");
}

#[test]
fn idle_replicas_share_traffic() {
    let t = table(TWO_VERSIONS);
    let firsts: std::collections::HashSet<String> = (0..64)
        .map(|s| ids(&t, &t.rank(&req("chat@v1"), s).unwrap())[0].clone())
        .collect();
    assert_eq!(
        firsts.len(),
        2,
        "both idle v1 replicas get first pick sometimes"
    );
}

#[test]
fn round_robin_rotates() {
    let yaml = TWO_VERSIONS.replace(
        "    fallbacks: [small]",
        "    fallbacks: [small]\n    routing: { policy: round_robin }",
    );
    let t = table(&yaml);
    let a = ids(&t, &t.rank(&req("chat@v1"), 0).unwrap())[0].clone();
    let b = ids(&t, &t.rank(&req("chat@v1"), 0).unwrap())[0].clone();
    assert_ne!(a, b);
}

#[test]
fn parse_model_splits_only_real_pins() {
    assert_eq!(parse_model("chat@v2"), ("chat", Some("v2")));
    assert_eq!(parse_model("chat"), ("chat", None));
    assert_eq!(parse_model("chat@"), ("chat@", None));
    assert_eq!(parse_model("@v1"), ("@v1", None));
}

const TIERS: &str = r#"
clouds: { onprem: { provider: private }, aws: { provider: aws }, azure: { provider: azure } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }], routing: { policy: cost_aware, spill_at: 0.8 } }]
replicas:
  - { id: azure-1, model: m, cloud: azure, url: "http://127.0.0.1:4", max_concurrency: 10, cost: { input_per_1k: 0.5, output_per_1k: 1.5 } }
  - { id: private-1, model: m, cloud: onprem, url: "http://127.0.0.1:1", max_concurrency: 10, cost: { input_per_1k: 0.1, output_per_1k: 0.1 } }
  - { id: aws-1, model: m, cloud: aws, url: "http://127.0.0.1:3", max_concurrency: 10, cost: { input_per_1k: 0.3, output_per_1k: 0.6 } }
  - { id: private-2, model: m, cloud: onprem, url: "http://127.0.0.1:2", max_concurrency: 10, cost: { input_per_1k: 0.1, output_per_1k: 0.1 } }
"#;

#[test]
fn cost_aware_fills_the_cheapest_tier_then_spills_in_price_order() {
    let t = table(TIERS);
    let mut held = Vec::new();
    let mut take = |seed: u64| {
        let r = t.rank(&req("m"), seed).unwrap();
        let a = t.admit("m", &r, &[]).unwrap();
        let id = a.entry.replica.id.clone();
        held.push(a.guard);
        id
    };
    // Private until both private replicas are at 8 of 10 (spill_at 0.8).
    for s in 0..16 {
        assert!(take(s).starts_with("private"), "request {s}");
    }
    for s in 16..24 {
        assert_eq!(take(s), "aws-1", "request {s}");
    }
    for s in 24..32 {
        assert_eq!(take(s), "azure-1", "request {s}");
    }
    // Every tier is past spill_at: the cheapest with room goes first again.
    assert!(take(32).starts_with("private"));
    // Load drops on the private tier: traffic comes back to it at once.
    held.drain(..16);
    let r = t.rank(&req("m"), 99).unwrap();
    assert!(
        t.admit("m", &r, &[])
            .unwrap()
            .entry
            .replica
            .id
            .starts_with("private")
    );
}

#[test]
fn residency_restricts_and_never_spills_outside() {
    let t = table(TIERS);
    let private = RouteRequest {
        model: "m",
        protocol: Protocol::OpenAi,
        clouds: &["private"],
        affinity_key: None,
        prefix: &[],
        adapter: None,
    };
    for seed in 0..50 {
        let r = t.rank(&private, seed).unwrap();
        assert!(
            ids(&t, &r).iter().all(|id| id.starts_with("private")),
            "{:?}",
            ids(&t, &r)
        );
    }
    // Fill both private replicas: the answer is "no capacity", not aws.
    let mut held = Vec::new();
    let r = t.rank(&private, 1).unwrap();
    while let Ok(a) = t.admit("m", &r, &[]) {
        held.push(a.guard);
    }
    assert_eq!(held.len(), 20);
    // A cloud with no replica of the group is a clear error.
    let nowhere = RouteRequest {
        model: "m",
        protocol: Protocol::OpenAi,
        clouds: &["gcp"],
        affinity_key: None,
        prefix: &[],
        adapter: None,
    };
    assert!(matches!(
        t.rank(&nowhere, 1),
        Err(RouteError::OutsideResidency { .. })
    ));
    // The group's own residency applies without any header.
    let pinned = TIERS.replace("routing: { policy", "residency: [aws], routing: { policy");
    let t = table(&pinned);
    assert_eq!(ids(&t, &t.rank(&req("m"), 3).unwrap()), vec!["aws-1"]);
}

#[test]
fn panic_mode_spreads_over_ejected_replicas_when_most_are_ejected() {
    let t = table(
        TIERS
            .replace("policy: cost_aware, ", "policy: least_loaded, ")
            .as_str(),
    );
    let eject = |id: &str| {
        let e = t.entries().iter().find(|e| e.replica.id == id).unwrap();
        for _ in 0..crate::health::EJECT_AFTER {
            e.stats.health.on_failure(crate::clock(), false);
        }
    };
    // One of four ejected: it gets nothing.
    eject("aws-1");
    let picks = first_picks(&t, 200);
    assert!(!picks.contains(&"aws-1".to_string()));
    // Three of four ejected: fewer than half healthy, so all share traffic.
    eject("azure-1");
    eject("private-1");
    let picks: std::collections::HashSet<String> = first_picks(&t, 200).into_iter().collect();
    assert_eq!(picks.len(), 4, "{picks:?}");
}

/// The replica admitted for each of `n` requests to `m` (slots released at once).
fn first_picks(t: &ReplicaTable, n: u64) -> Vec<String> {
    (0..n)
        .map(|s| {
            t.admit("m", &t.rank(&req("m"), s).unwrap(), &[])
                .unwrap()
                .entry
                .replica
                .id
                .clone()
        })
        .collect()
}

#[test]
fn a_session_key_sticks_to_one_version_and_only_moves_toward_a_growing_canary() {
    let t = table(TWO_VERSIONS);
    let version_of = |t: &ReplicaTable, key: u64, seed: u64| {
        let r = RouteRequest {
            affinity_key: Some(key),
            prefix: &[],
            adapter: None,
            ..req("chat")
        };
        let first = t.rank(&r, seed).unwrap().iter().next().unwrap();
        t.entries()[first].replica.version.clone()
    };
    for key in 0..200u64 {
        let v = version_of(&t, key, 1);
        for seed in 2..12 {
            assert_eq!(
                version_of(&t, key, seed),
                v,
                "session {key} flipped versions"
            );
        }
    }
    // Canary from 20% to 60%: sessions on v2 stay there.
    let grown = table(&TWO_VERSIONS.replace(
        "weight: 80 }, { name: v2, weight: 20",
        "weight: 40 }, { name: v2, weight: 60",
    ));
    let (mut moved, mut on_v2) = (0, 0);
    for key in 0..2000u64 {
        let (before, after) = (version_of(&t, key, 0), version_of(&grown, key, 0));
        if before == "v2" {
            on_v2 += 1;
            assert_eq!(after, "v2", "session {key} moved away from the canary");
        } else if after == "v2" {
            moved += 1;
        }
    }
    assert!(
        (300..500).contains(&on_v2),
        "{on_v2} of 2000 on a 20% canary"
    );
    assert!(moved > 0);
}
