//! Engine figures and cached prefixes in ranking: `least_loaded` and
//! `cost_aware` read the engine's queue and KV use when fresh, and
//! `prefix_cache` sends a prompt where its prefix is cached unless that
//! replica is busy. Small tables from real config text, the clock passed in.

use std::fmt::Write;

use switchyard_config::{Protocol, load_str};

use crate::{EngineFigures, ReplicaTable, RouteRequest, StatsRegistry, prefix_blocks};

fn table(policy: &str, replicas: &[(&str, &str)]) -> ReplicaTable {
    let mut y = format!(
        "clouds: {{ c: {{ provider: private }} }}\nmodels: [{{ name: m, versions: [{{ name: v1, weight: 100 }}], routing: {{ policy: {policy}, slow_start_ms: 0 }} }}]\nreplicas:\n"
    );
    for (k, (id, extra)) in replicas.iter().enumerate() {
        writeln!(
            y,
            "  - {{ id: {id}, model: m, cloud: c, url: \"http://127.0.0.1:{}\", engine: vllm{extra} }}",
            3000 + k
        )
        .unwrap();
    }
    ReplicaTable::build(&load_str(&y, &|_| None).unwrap(), &StatsRegistry::new())
}

/// The replica admitted for `prefix`, holding its slot while `hold`.
fn pick(t: &ReplicaTable, prefix: &[u64], seed: u64, now: u64) -> String {
    let req = RouteRequest {
        model: "m",
        protocol: Protocol::OpenAi,
        clouds: &[],
        affinity_key: None,
        prefix,
        adapter: None,
    };
    let ranking = t.rank_at(&req, seed, now).unwrap();
    let a = t.admit_at("m", &ranking, &[], now).unwrap();
    a.entry.replica.id.clone()
}

fn figures(waiting: u32, kv: f64) -> EngineFigures {
    EngineFigures {
        waiting,
        running: 0,
        kv: Some(kv),
    }
}

#[test]
fn least_loaded_avoids_the_replica_whose_engine_queues_while_figures_are_fresh() {
    let t = table("least_loaded", &[("a", ""), ("b", "")]);
    let e = t.entries();
    e[0].stats.engine.update(figures(30, 0.9), 0, 1_000);
    e[1].stats.engine.update(figures(0, 0.1), 0, 1_000);
    for seed in 0..200 {
        assert_eq!(pick(&t, &[], seed, 1_500), "b", "a's engine has 30 queued");
    }
    // 2 s later (engine_stale_ms) the figures are not trusted: both again.
    let seen: std::collections::HashSet<String> =
        (0..200).map(|seed| pick(&t, &[], seed, 3_100)).collect();
    assert_eq!(seen.len(), 2, "stale figures are ignored: {seen:?}");
}

#[test]
fn the_engine_queue_counts_our_sends_since_the_scrape() {
    let t = table("least_loaded", &[("a", ""), ("b", "")]);
    let e = t.entries();
    // Both idle at the scrape; since then we sent 8 to a.
    e[0].stats.engine.update(figures(0, 0.0), 0, 1_000);
    e[1].stats.engine.update(figures(0, 0.0), 0, 1_000);
    let _held: Vec<_> = (0..8)
        .map(|_| e[0].stats.try_acquire(64).unwrap())
        .collect();
    for seed in 0..100 {
        assert_eq!(pick(&t, &[], seed, 1_100), "b");
    }
}

#[test]
fn cost_aware_spills_when_the_cheap_tiers_engine_saturates() {
    let t = table(
        "cost_aware",
        &[
            ("cheap", ", cost: { input_per_1k: 0.1, output_per_1k: 0.1 }"),
            ("dear", ", cost: { input_per_1k: 1.0, output_per_1k: 1.0 }"),
        ],
    );
    let e = t.entries();
    assert_eq!(pick(&t, &[], 1, 1_000), "cheap", "idle: the cheap tier");
    // Our slots are free, but vLLM has a queue: spill to the dearer tier.
    e[0].stats.engine.update(figures(4, 0.5), 0, 1_000);
    assert_eq!(pick(&t, &[], 1, 1_100), "dear");
}

#[test]
fn prefix_cache_follows_the_cached_prefix_until_that_replica_is_busy() {
    let t = table(
        "prefix_cache",
        &[
            ("a", ", max_concurrency: 8"),
            ("b", ", max_concurrency: 8"),
            ("c", ", max_concurrency: 8"),
        ],
    );
    let system = "You are a careful assistant. ".repeat(20);
    let convo = |turn: &str| prefix_blocks(format!("{system}{turn}").as_bytes(), 64, 128);
    // The first request lands somewhere and is recorded there...
    let first = pick(&t, &convo("user: hello"), 7, 1_000);
    // ...and every later turn sharing the system prompt follows it, over
    // many random seeds (no luck involved).
    for seed in 0..100 {
        assert_eq!(pick(&t, &convo("user: and then?"), seed, 1_000), first);
    }
    // Busier by less than a slot-fill, the holder keeps the prompt: a
    // cached prefill is worth more than a short wait.
    let holder = t.entries().iter().find(|e| e.replica.id == first).unwrap();
    let _held: Vec<_> = (0..4)
        .map(|_| holder.stats.try_acquire(8).unwrap())
        .collect();
    assert_eq!(pick(&t, &convo("user: one more"), 3, 1_000), first);
    // Saturated (its engine queues a slot-fill more): an idle replica wins.
    holder.stats.engine.update(figures(12, 0.5), 4, 1_000);
    let other = pick(&t, &convo("user: one more"), 3, 1_100);
    assert_ne!(other, first, "a saturated holder is passed over");
}

#[test]
fn a_prompt_without_a_full_block_ranks_by_load() {
    let t = table("prefix_cache", &[("a", ""), ("b", "")]);
    let seen: std::collections::HashSet<String> =
        (0..200).map(|seed| pick(&t, &[], seed, 1_000)).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
}
