//! What a JWT costs a request: the first time a token is seen (ES256 and
//! EdDSA signature checks against a cached key, plus the claims), and every
//! later time (a lookup in the verified-token cache). An API key's hash
//! lookup is measured alongside as the same-run baseline.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use http::HeaderMap;
use switchyard_config::jwt::Jwks;
use switchyard_proxy::auth::authenticate;
use switchyard_proxy::jwt::JwtAuth;
use switchyard_proxy::jwt::keys::Fetched;
use switchyard_proxy::runtime_keys::RuntimeKeys;

#[path = "../src/jwt/test_signer.rs"]
mod signer;
use signer::Signer;

const NOW: f64 = 1_800_000_000.0;

fn config() -> switchyard_config::Config {
    let yaml = "clouds: { c: { provider: private } }\n\
        models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]\n\
        replicas: [{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }]\n\
        tenants: [{ name: acme, keys: [{ id: k, key: sk-bench-0123456789abcdef0123456789abcdef }] }]\n\
        auth: { jwt: [{ issuer: \"https://idp.test\", audiences: [gw], jwks_uri: \"http://127.0.0.1:1/k\",\n\
                        algorithms: [ES256, EdDSA], tenant_claim: org }] }\n";
    switchyard_config::load_str(yaml, &|_| None).unwrap()
}

fn token(s: &Signer) -> String {
    s.token(
        &serde_json::json!({"iss": "https://idp.test", "aud": "gw", "sub": "user-1",
        "exp": NOW + 3600.0, "iat": NOW, "org": "acme", "scope": "chat embeddings"}),
    )
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let auth = JwtAuth::prepare(&cfg, None).unwrap();
    let es = Signer::es256("es");
    let ed = Signer::eddsa("ed");
    let (issuer, store) = auth.issuers().next().unwrap();
    let keys = Jwks::parse(Signer::jwks(&[&es, &ed]).as_bytes()).unwrap();
    store.record(
        issuer,
        tokio::time::Instant::now(),
        Fetched::Keys(keys, None),
    );
    let (t_es, t_ed) = (token(&es), token(&ed));

    let mut g = c.benchmark_group("jwt");
    g.bench_function("first_sight_es256", |b| {
        b.iter(|| auth.check(black_box(&t_es), NOW).unwrap())
    });
    g.bench_function("first_sight_eddsa", |b| {
        b.iter(|| auth.check(black_box(&t_ed), NOW).unwrap())
    });
    auth.verify(&t_es, NOW).unwrap();
    g.bench_function("cached_token_es256", |b| {
        b.iter(|| auth.verify(black_box(&t_es), NOW).unwrap())
    });
    let none = RuntimeKeys::default();
    let mut bearer = HeaderMap::new();
    let v = format!("Bearer {t_es}").parse().unwrap();
    bearer.insert(http::header::AUTHORIZATION, v);
    g.bench_function("authenticate_cached_token", |b| {
        b.iter(|| authenticate(&cfg, &none, Some(&auth), black_box(&bearer)).unwrap())
    });
    let mut key = HeaderMap::new();
    let v = "Bearer sk-bench-0123456789abcdef0123456789abcdef"
        .parse()
        .unwrap();
    key.insert(http::header::AUTHORIZATION, v);
    g.bench_function("authenticate_api_key_baseline", |b| {
        b.iter(|| authenticate(&cfg, &none, Some(&auth), black_box(&key)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
