//! Client API keys: 401 without a valid one, 403 for a model the tenant may
//! not call, the priority capped at the tenant's ceiling; the key never
//! reaches a replica; no tenants on loopback keeps working without keys.

use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Answer, Http, chat, eventually, replicas, within};

fn hash(key: &str) -> String {
    let d = switchyard_config::key_digest(key.as_bytes());
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn yaml() -> String {
    format!(
        r#"
clouds: {{ c: {{ provider: private }} }}
models:
  - {{ name: m, versions: [{{ name: v1, weight: 100 }}], routing: {{ queue_size: 4, queue_timeout_ms: 5000 }} }}
  - {{ name: n, versions: [{{ name: v1, weight: 100 }}] }}
replicas:
  - {{ id: r, model: m, cloud: c, url: "${{R_URL}}", max_concurrency: 1 }}
  - {{ id: s, model: n, cloud: c, url: "${{S_URL}}" }}
tenants:
  - name: batch
    keys: [{{ id: b1, key: batch-key }}]
    models: [m]
    max_priority: low
  - name: app
    keys: [{{ id: a1, hash: "{}" }}]
"#,
        hash("app-key")
    )
}

async fn call(
    http: &Http,
    addr: std::net::SocketAddr,
    model: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    http.call(
        "POST",
        addr,
        "/v1/chat/completions",
        &h,
        chat(model, false).to_string(),
    )
    .await
}

fn assert_openai_error(ans: &Answer, status: u16, kind: &str, code: &str) {
    assert_eq!(ans.status, status, "{:?}", ans.body);
    let e = &ans.json()["error"];
    assert_eq!(e["type"], kind, "{e}");
    assert_eq!(e["code"], code, "{e}");
}

#[tokio::test]
async fn keys_are_required_checked_and_kept_from_replicas() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("s", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(&yaml(), &fleet).await;
    let http = Http::default();
    let addr = gw.data_addr;

    let none = call(&http, addr, "m", &[]).await;
    assert_openai_error(&none, 401, "authentication_error", "invalid_api_key");
    let wrong = call(&http, addr, "m", &[("authorization", "Bearer nope")]).await;
    assert_openai_error(&wrong, 401, "authentication_error", "invalid_api_key");
    assert_eq!(http.get(addr, "/v1/models").await.status, 401);
    assert_eq!(
        fleet["r"].hits(),
        0,
        "nothing unauthenticated reached a replica"
    );

    for key in [
        ("authorization", "Bearer app-key"),
        ("authorization", "bearer app-key"),
        ("x-api-key", "app-key"),
        ("api-key", "batch-key"),
    ] {
        let ans = call(&http, addr, "m", &[key]).await;
        assert_eq!(ans.status, 200, "{key:?}: {:?}", ans.body);
        let sent = fleet["r"].last_request().unwrap();
        for h in ["authorization", "x-api-key", "api-key"] {
            assert!(sent.headers.get(h).is_none(), "{h} reached the replica");
        }
    }

    let denied = call(&http, addr, "n", &[("x-api-key", "batch-key")]).await;
    assert_openai_error(&denied, 403, "permission_error", "model_not_allowed");
    assert_eq!(denied.json()["error"]["param"], "model");
    assert_eq!(fleet["s"].hits(), 0);
    let ok = call(&http, addr, "n", &[("x-api-key", "app-key")]).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn priority_is_honoured_only_up_to_the_tenants_ceiling() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("s", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(&yaml(), &fleet).await;
    let r = &fleet["r"];
    r.hold();
    let http = Http::default();
    let send = |key: &'static str, priority: &'static str| {
        let (http, addr) = (http.clone(), gw.data_addr);
        tokio::spawn(async move {
            let ans = call(
                &http,
                addr,
                "m",
                &[("x-api-key", key), ("x-switchyard-priority", priority)],
            )
            .await;
            ans.status
        })
    };
    let first = send("app-key", "normal");
    eventually("the only slot is taken", || r.in_flight() == 1).await;
    let queue = gw.proxy().queues().get("m");
    let app_low = send("app-key", "low");
    eventually("app's low is queued", || queue.len() == 1).await;
    // Asks for high, but batch's ceiling is low: it waits behind app's low.
    let batch_high = send("batch-key", "high");
    eventually("batch's request is queued", || queue.len() == 2).await;
    r.release();
    let s1 = within(first).await.unwrap();
    let sa = within(app_low).await.unwrap();
    let sb = within(batch_high).await.unwrap();
    assert_eq!((s1.as_u16(), sa.as_u16(), sb.as_u16()), (200, 200, 200));
    // The order the replica served them in (one slot: one at a time), not
    // when each answer reached its client task: the last two answers are
    // microseconds apart, and a loaded test runtime may read them either way.
    let last = r.last_request().expect("the replica records requests");
    assert_eq!(
        last.headers
            .get("x-switchyard-priority")
            .map(|v| v.as_bytes()),
        Some(&b"high"[..]),
        "batch's `high` was served as `low`, so after app's `low`"
    );
}

#[tokio::test]
async fn without_tenants_loopback_needs_no_key() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let yaml = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r, model: m, cloud: c, url: "${R_URL}" }]
"#;
    let gw = switchyard_tests::gateway(yaml, &fleet).await;
    let ans = call(&Http::default(), gw.data_addr, "m", &[]).await;
    assert_eq!(ans.status, 200);
    assert_eq!(
        gw.proxy().snapshot().config.server.listen.to_string(),
        "127.0.0.1:8080"
    );
}

#[tokio::test]
async fn a_tenant_over_its_rate_or_concurrency_gets_429_with_retry_after() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("s", ReplicaConfig::default()),
    ])
    .await;
    let yaml = yaml().replace(
        "    max_priority: low\n",
        "    max_priority: low\n    concurrency: 1\n",
    ) + "    requests_per_minute: 2\n";
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    let http = Http::default();
    let addr = gw.data_addr;

    // batch: one request in flight at a time, counted until its body ends.
    let r = &fleet["r"];
    r.hold();
    let held = {
        let http = http.clone();
        tokio::spawn(async move { call(&http, addr, "m", &[("x-api-key", "batch-key")]).await })
    };
    eventually("batch's request is in flight", || r.in_flight() == 1).await;
    let over = call(&http, addr, "m", &[("x-api-key", "batch-key")]).await;
    assert_openai_error(&over, 429, "invalid_request_error", "rate_limit_exceeded");
    assert_eq!(over.header("retry-after"), "1");
    assert!(
        over.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("concurrency")
    );
    r.release();
    assert_eq!(within(held).await.unwrap().status, 200);
    let again = call(&http, addr, "m", &[("x-api-key", "batch-key")]).await;
    assert_eq!(again.status, 200, "the place came back with the body's end");

    // app: two requests a minute.
    for _ in 0..2 {
        assert_eq!(
            call(&http, addr, "n", &[("x-api-key", "app-key")])
                .await
                .status,
            200
        );
    }
    let over = call(&http, addr, "n", &[("x-api-key", "app-key")]).await;
    assert_eq!(over.status, 429);
    assert!(
        over.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requests_per_minute")
    );
    assert_eq!(over.header("retry-after"), "30");
}

/// Residency per tenant and version pins: a tenant with `clouds` reaches
/// only replicas there (whatever `x-switchyard-clouds` asks, which can
/// only narrow it; nothing left is 403 `cloud_not_allowed`), and one
/// allowed `m@v2` only may call that pinned version.
#[tokio::test]
async fn a_tenants_clouds_and_pinned_versions_bound_where_it_goes() {
    let fleet = replicas(&[
        ("eu", ReplicaConfig::default()),
        ("us", ReplicaConfig::default()),
        ("v2", ReplicaConfig::default()),
    ])
    .await;
    let yaml = r#"
clouds: { eu-dc: { provider: private }, us-east: { provider: aws } }
models:
  - { name: m, versions: [{ name: v1, weight: 100 }, { name: v2, weight: 0 }] }
replicas:
  - { id: eu, model: m, version: v1, cloud: eu-dc, url: "${EU_URL}" }
  - { id: us, model: m, version: v1, cloud: us-east, url: "${US_URL}" }
  - { id: v2, model: m, version: v2, cloud: us-east, url: "${V2_URL}" }
tenants:
  - { name: gdpr, keys: [{ id: g, key: gdpr-key }], clouds: [private] }
  - { name: pinned, keys: [{ id: p, key: pinned-key }], models: ["m@v2"] }
  - { name: open, keys: [{ id: o, key: open-key }] }
"#;
    let gw = switchyard_tests::gateway(yaml, &fleet).await;
    let http = Http::default();
    let addr = gw.data_addr;
    let gdpr = ("x-api-key", "gdpr-key");

    for _ in 0..20 {
        let ans = call(&http, addr, "m", &[gdpr]).await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
    }
    assert_eq!(fleet["eu"].hits(), 20, "every gdpr request stayed in eu-dc");
    assert_eq!(fleet["us"].hits(), 0);
    // Asking for a cloud the tenant may not reach leaves nothing: 403.
    let out = call(&http, addr, "m", &[gdpr, ("x-switchyard-clouds", "aws")]).await;
    assert_openai_error(&out, 403, "permission_error", "cloud_not_allowed");
    assert_eq!(fleet["us"].hits(), 0);
    // Another tenant is not bound by it.
    let open = call(
        &http,
        addr,
        "m",
        &[("x-api-key", "open-key"), ("x-switchyard-clouds", "aws")],
    )
    .await;
    assert_eq!(open.status, 200, "{:?}", open.body);
    assert_eq!(fleet["us"].hits(), 1);

    let pinned = ("x-api-key", "pinned-key");
    let ok = call(&http, addr, "m@v2", &[pinned]).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(fleet["v2"].hits(), 1);
    for model in ["m", "m@v1"] {
        let denied = call(&http, addr, model, &[pinned]).await;
        assert_openai_error(&denied, 403, "permission_error", "model_not_allowed");
    }
}
