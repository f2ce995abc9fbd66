//! What the key check costs a request (`auth::authenticate`): one SHA-256
//! of the presented key and one map lookup, with 1,000 keys in the config
//! (10 tenants × 100), and 1,000 more created at run time (asked only when
//! the config's index misses). Target: < 1 µs.

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt::Write;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use switchyard_config::{Config, key_digest, load_str};
use switchyard_proxy::auth::authenticate;
use switchyard_proxy::runtime_keys::{RuntimeKey, RuntimeKeys};

const TENANTS: usize = 10;
const KEYS_PER_TENANT: usize = 100;

/// A key as long as the generated ones (`sk-sy-` + 43 characters).
fn key(kind: &str, t: usize, k: usize) -> String {
    format!(
        "sk-sy-{kind}{t:04}{k:04}{}",
        "x".repeat(43 - kind.len() - 8)
    )
}

fn config() -> Config {
    let mut yaml = String::from(
        "clouds: { c: { provider: private } }\n\
         models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]\n\
         replicas: [{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }]\n\
         tenants:\n",
    );
    for t in 0..TENANTS {
        writeln!(yaml, "  - name: t{t}\n    keys:").unwrap();
        for k in 0..KEYS_PER_TENANT {
            writeln!(yaml, "      - {{ id: k{k}, key: {} }}", key("cfg", t, k)).unwrap();
        }
    }
    load_str(&yaml, &|_| None).unwrap()
}

fn runtime() -> RuntimeKeys {
    let keys = RuntimeKeys::default();
    let mut index = HashMap::new();
    for t in 0..TENANTS {
        for k in 0..KEYS_PER_TENANT {
            let rk = RuntimeKey {
                id: format!("key_{t}_{k}"),
                tenant: format!("t{t}"),
                expires_at_ms: None,
            };
            index.insert(key_digest(key("run", t, k).as_bytes()), rk);
        }
    }
    keys.replace(index);
    keys
}

fn bearer(key: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
    h.insert(http::header::AUTHORIZATION, value);
    h
}

fn bench(c: &mut Criterion) {
    let config = config();
    assert_eq!(config.key_index.len(), TENANTS * KEYS_PER_TENANT);
    let none = RuntimeKeys::default();
    let runtime = runtime();
    let mut g = c.benchmark_group("authenticate (1,000 config keys)");
    let hit = bearer(&key("cfg", 7, 42));
    g.bench_function("config key", |b| {
        b.iter(|| authenticate(black_box(&config), &none, None, black_box(&hit)).unwrap())
    });
    let x_api_key = {
        let mut h = HeaderMap::new();
        h.insert(
            "x-api-key",
            HeaderValue::from_str(&key("cfg", 3, 9)).unwrap(),
        );
        h
    };
    g.bench_function("config key in x-api-key", |b| {
        b.iter(|| authenticate(black_box(&config), &none, None, black_box(&x_api_key)).unwrap())
    });
    let run_hit = bearer(&key("run", 7, 42));
    g.bench_function("runtime key (+1,000 runtime keys)", |b| {
        b.iter(|| authenticate(black_box(&config), &runtime, None, black_box(&run_hit)).unwrap())
    });
    let miss = bearer(&key("bad", 0, 0));
    g.bench_function("unknown key (401)", |b| {
        b.iter(|| authenticate(black_box(&config), &runtime, None, black_box(&miss)).unwrap_err())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
