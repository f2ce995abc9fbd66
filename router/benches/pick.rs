//! How long choosing a replica takes as the table grows.

#![allow(missing_docs, clippy::unwrap_used)]

use std::fmt::Write;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use switchyard_config::{Protocol, load_str};
use switchyard_router::{ReplicaTable, RouteRequest, StatsRegistry};

/// One group, two versions (90/10), `n` replicas split between them.
fn table(n: usize) -> ReplicaTable {
    table_with(n, "cost_aware")
}

/// The same under `policy`.
fn table_with(n: usize, policy: &str) -> ReplicaTable {
    let mut yaml = format!(
        "clouds: {{ c: {{ provider: private }} }}\nmodels:\n  - name: chat\n    routing: {{ policy: {policy} }}\n    versions: [{{ name: v1, weight: 90 }}, {{ name: v2, weight: 10 }}]\nreplicas:\n",
    );
    for i in 0..n {
        let v = if i % 10 == 0 { "v2" } else { "v1" };
        writeln!(
            yaml,
            "  - {{ id: r{i}, model: chat, version: {v}, cloud: c, url: \"http://10.0.{}.{}:8000\", max_concurrency: 64 }}",
            i / 250,
            i % 250
        )
        .unwrap();
    }
    let cfg = load_str(&yaml, &|_| None).unwrap();
    ReplicaTable::build(&cfg, &StatsRegistry::new())
}

fn pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("rank_and_admit");
    for n in [10, 1_000, 10_000] {
        let t = table(n);
        // Some load so the ranking has something to sort by.
        let guards: Vec<_> = t
            .entries()
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == 0)
            .filter_map(|(_, e)| e.stats.try_acquire(64))
            .collect();
        let req = RouteRequest {
            model: "chat",
            protocol: Protocol::OpenAi,
            clouds: &[],
            affinity_key: None,
            prefix: &[],
            adapter: None,
        };
        let mut seed = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(n), &t, |b, t| {
            b.iter(|| {
                seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let ranking = t.rank(black_box(&req), seed).unwrap();
                let admitted = t.admit("chat", &ranking, &[]).unwrap();
                black_box(admitted.index)
            })
        });
        drop(guards);
    }
    group.finish();
}

/// The other policies at 100 replicas (`affinity` scores every replica).
fn policies(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_100");
    for policy in ["least_loaded", "weighted", "affinity"] {
        let t = table_with(100, policy);
        let mut seed = 0u64;
        group.bench_function(policy, |b| {
            b.iter(|| {
                seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let req = RouteRequest {
                    model: "chat",
                    protocol: Protocol::OpenAi,
                    clouds: &[],
                    affinity_key: Some(seed >> 7),
                    prefix: &[],
                    adapter: None,
                };
                let ranking = t.rank(black_box(&req), seed).unwrap();
                let admitted = t.admit("chat", &ranking, &[]).unwrap();
                black_box(admitted.index)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pick, policies);
criterion_main!(benches);
