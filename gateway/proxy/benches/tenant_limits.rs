//! What a tenant's limits cost per request on the hot path: the admission
//! (in-flight count, request buckets of key and tenant), the reservation
//! against tokens per minute and budgets, and settling it from the
//! reported usage; next to a tenant with no limits (an account lookup and
//! an `Arc` clone for booking).

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_config::{Config, Cost, load_str};
use switchyard_proxy::tenant_limits::{Ask, RateInfo, TenantLimits};
use switchyard_proxy::usage::Usage;
use tokio::time::Instant;

fn config() -> Config {
    let yaml = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r, model: m, cloud: c, url: "http://127.0.0.1:1" }]
tenants:
  - { name: free, keys: [{ id: f, key: free-key }] }
  - name: paid
    keys: [{ id: k, key: paid-key, requests_per_minute: 100000000, daily_budget_usd: 1000000 }]
    requests_per_minute: 100000000
    concurrency: 1000000
    tokens_per_minute: 1000000000
    monthly_budget_usd: 1000000000
"#;
    load_str(yaml, &|_| None).unwrap()
}

fn bench(c: &mut Criterion) {
    let config = config();
    let limits = TenantLimits::default();
    let price = Cost {
        input_per_1k: 0.001,
        output_per_1k: 0.002,
        per_hour: None,
        tokens_per_hour: None,
    };
    let usage = Some(Usage {
        prompt_tokens: 100,
        completion_tokens: 50,
    });
    let ask = Ask {
        tokens: 300,
        cost_nano: 500,
    };
    let mut g = c.benchmark_group("tenant_limits");
    let (free, free_key) = (&config.tenants[0], &config.tenants[0].keys[0]);
    g.bench_function("no_limits_admit_and_book", |b| {
        b.iter(|| {
            let mut rate = RateInfo::default();
            let a = limits
                .admit(free, free_key, Instant::now(), &mut rate)
                .unwrap();
            a.sink().book(black_box(usage), &price);
        });
    });
    let (paid, paid_key) = (&config.tenants[1], &config.tenants[1].keys[0]);
    g.bench_function("all_limits_admit_reserve_settle", |b| {
        b.iter(|| {
            let mut rate = RateInfo::default();
            let now = Instant::now();
            let mut a = limits.admit(paid, paid_key, now, &mut rate).unwrap();
            limits
                .reserve(&mut a, paid, paid_key, black_box(ask), now, &mut rate)
                .unwrap();
            a.served();
            a.sink().book(black_box(usage), &price);
            black_box(rate);
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
