//! LoRA affinity in ranking: a request naming an adapter goes where the
//! engine reports it running (then waiting, then a free slot), not to an
//! overloaded holder, and stale figures give no preference. Small tables
//! from real config text, the clock passed in.

use std::collections::HashSet;

use switchyard_config::{Protocol, load_str};

use crate::{Adapters, EngineFigures, ReplicaTable, RouteRequest, StatsRegistry};

fn table(policy: &str, n: usize) -> ReplicaTable {
    let mut y = format!(
        "clouds: {{ c: {{ provider: private }} }}\nmodels: [{{ name: base, adapters: [sql, chat], versions: [{{ name: v1, weight: 100 }}], routing: {{ policy: {policy}, slow_start_ms: 0 }} }}]\nreplicas:\n"
    );
    for k in 0..n {
        y.push_str(&format!(
            "  - {{ id: r{k}, model: base, cloud: c, url: \"http://127.0.0.1:{}\", engine: vllm, max_concurrency: 8 }}\n",
            3000 + k
        ));
    }
    ReplicaTable::build(&load_str(&y, &|_| None).unwrap(), &StatsRegistry::new())
}

/// The replica admitted for a request naming `model`, at `now`.
fn pick(t: &ReplicaTable, model: &str, seed: u64, now: u64) -> String {
    let (group, adapter) = t
        .adapter(model)
        .map_or((model.to_owned(), None), |(g, a)| (g, Some(a)));
    let req = RouteRequest {
        model: &group,
        protocol: Protocol::OpenAi,
        clouds: &[],
        affinity_key: None,
        prefix: &[],
        adapter,
    };
    let ranking = t.rank_at(&req, seed, now).unwrap();
    let a = t.admit_at(&group, &ranking, &[], now).unwrap();
    a.entry.replica.id.clone()
}

fn adapters(running: &[&str], waiting: &[&str], max: u32) -> Option<Adapters> {
    let v = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect();
    Some(Adapters {
        running: v(running),
        waiting: v(waiting),
        max,
    })
}

/// Every replica idle as far as the engine knows, scraped at `at`.
fn idle(t: &ReplicaTable, at: u64) {
    for e in t.entries() {
        let f = EngineFigures {
            waiting: 0,
            running: 0,
            kv: Some(0.1),
        };
        e.stats.engine.update(f, 0, at);
    }
}

#[test]
fn an_adapter_routes_to_its_group_and_prefers_the_replica_running_it() {
    for policy in ["least_loaded", "round_robin", "prefix_cache", "cost_aware"] {
        let t = table(policy, 3);
        idle(&t, 1_000);
        let e = t.entries();
        e[0].stats.lora.update(adapters(&["chat"], &[], 2), 1_000);
        e[1].stats.lora.update(adapters(&["sql"], &[], 2), 1_000);
        e[2].stats.lora.update(adapters(&[], &[], 2), 1_000);
        for seed in 0..100 {
            assert_eq!(pick(&t, "sql", seed, 1_200), "r1", "{policy}");
            assert_eq!(pick(&t, "chat", seed, 1_200), "r0", "{policy}");
        }
        // The base model's own requests are not steered.
        let seen: HashSet<String> = (0..200).map(|s| pick(&t, "base", s, 1_200)).collect();
        assert_eq!(seen.len(), 3, "{policy}: {seen:?}");
    }
}

#[test]
fn running_beats_waiting_beats_a_free_slot_beats_a_full_replica() {
    let t = table("least_loaded", 3);
    idle(&t, 1_000);
    let e = t.entries();
    e[0].stats.lora.update(adapters(&["a", "b"], &[], 2), 1_000);
    e[1].stats.lora.update(adapters(&[], &["sql"], 2), 1_000);
    e[2].stats.lora.update(adapters(&["a"], &[], 2), 1_000);
    for seed in 0..100 {
        assert_eq!(pick(&t, "sql", seed, 1_100), "r1", "loading it already");
    }
    e[1].stats.lora.update(adapters(&["a", "b"], &[], 2), 1_000);
    for seed in 0..100 {
        assert_eq!(pick(&t, "sql", seed, 1_100), "r2", "a free adapter slot");
    }
}

#[test]
fn stale_or_missing_adapter_figures_give_no_preference() {
    let t = table("least_loaded", 3);
    idle(&t, 1_000);
    t.entries()[1]
        .stats
        .lora
        .update(adapters(&["sql"], &[], 1), 1_000);
    assert_eq!(pick(&t, "sql", 5, 2_000), "r1", "fresh");
    // Older than engine_stale_ms (2 s): spread like any request.
    idle(&t, 3_500);
    let seen: HashSet<String> = (0..200).map(|s| pick(&t, "sql", s, 3_500)).collect();
    assert_eq!(seen.len(), 3, "stale adapter figures are ignored: {seen:?}");
}

#[test]
fn an_overloaded_holder_loses_to_an_idle_replica_with_a_free_slot() {
    let t = table("least_loaded", 2);
    let e = t.entries();
    e[0].stats.lora.update(adapters(&["sql"], &[], 2), 1_000);
    e[1].stats.lora.update(adapters(&[], &[], 2), 1_000);
    let busy = EngineFigures {
        waiting: 12,
        running: 8,
        kv: Some(0.9),
    };
    e[0].stats.engine.update(busy, 0, 1_000);
    let free = EngineFigures {
        waiting: 0,
        running: 1,
        kv: Some(0.1),
    };
    e[1].stats.engine.update(free, 0, 1_000);
    for seed in 0..100 {
        assert_eq!(pick(&t, "sql", seed, 1_100), "r1", "r0 queues 12 behind 8");
    }
    // And a full holder is skipped by admission whatever the ranking says.
    e[0].stats.engine.update(EngineFigures::default(), 0, 1_200);
    let _held: Vec<_> = (0..8).map(|_| e[0].stats.try_acquire(8).unwrap()).collect();
    assert_eq!(pick(&t, "sql", 1, 1_300), "r1");
}

#[test]
fn a_pinned_version_of_an_adapter_resolves_to_the_groups_version() {
    let t = table("least_loaded", 1);
    assert_eq!(t.adapter("sql@v1"), Some(("base@v1".to_owned(), "sql")));
    assert_eq!(t.adapter("base"), None);
    assert_eq!(t.adapter("other"), None);
}
