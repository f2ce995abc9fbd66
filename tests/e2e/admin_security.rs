//! The admin API refuses what a browser could send on someone's behalf
//! (cross-site forms, DNS rebinding), tells token roles apart, audits every
//! change and answers every error in one JSON shape.

use bytes::Bytes;
use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Answer, Http, within};

const YAML: &str = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 50 }, { name: v2, weight: 50 }] }]
replicas:
  - { id: r1, model: m, version: v1, cloud: c, url: "${R_URL}" }
  - { id: r2, model: m, version: v2, cloud: c, url: "${R_URL}" }
"#;

async fn start(server: &str) -> switchyard_gateway::Running {
    let fleet = switchyard_tests::replicas(&[("r", ReplicaConfig::default())]).await;
    switchyard_tests::gateway(&format!("{server}{YAML}"), &fleet).await
}

async fn weights(
    http: &Http,
    gw: &switchyard_gateway::Running,
    headers: &[(&str, &str)],
) -> Answer {
    http.call(
        "POST",
        gw.admin_addr,
        "/admin/models/m/weights",
        headers,
        r#"{"v1": 100, "v2": 0}"#,
    )
    .await
}

fn assert_refused(ans: &Answer, status: u16, field: &str) {
    assert_eq!(ans.status, status, "{:?}", ans.body);
    let json = ans.json();
    assert!(
        json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{json}"
    );
    assert_eq!(json["errors"][0]["field"], field, "{json}");
}

#[tokio::test]
async fn cross_site_admin_changes_are_refused_and_same_origin_ones_pass() {
    let gw = start("").await;
    let http = Http::default();
    let own = format!("http://{}", gw.admin_addr);
    let json = ("content-type", "application/json");

    let evil = weights(&http, &gw, &[json, ("origin", "http://evil.example")]).await;
    assert_refused(&evil, 403, "origin");
    let null = weights(&http, &gw, &[json, ("origin", "null")]).await;
    assert_refused(&null, 403, "origin");
    let rebound = format!("evil.example:{}", gw.admin_addr.port());
    let rebinding = weights(&http, &gw, &[json, ("host", &rebound)]).await;
    assert_refused(&rebinding, 403, "host");
    let read = http
        .call(
            "GET",
            gw.admin_addr,
            "/admin/config",
            &[("host", &rebound)],
            Bytes::new(),
        )
        .await;
    assert_refused(&read, 403, "host");
    for form in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let ans = weights(&http, &gw, &[("content-type", form)]).await;
        assert_refused(&ans, 415, "content-type");
    }
    let ans = http
        .call(
            "POST",
            gw.admin_addr,
            "/admin/config",
            &[("content-type", "text/plain")],
            "models: []",
        )
        .await;
    assert_refused(&ans, 415, "content-type");
    assert_eq!(gw.proxy().snapshot().generation, 1, "nothing was applied");

    // Same origin (the dashboard), curl-style (no Origin) and localhost pass.
    let ans = weights(&http, &gw, &[json, ("origin", &own)]).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    let ans = weights(&http, &gw, &[json]).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    let localhost = format!("localhost:{}", gw.admin_addr.port());
    let ans = weights(&http, &gw, &[json, ("host", &localhost)]).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    let ans = http
        .call(
            "POST",
            gw.admin_addr,
            "/admin/models/m/rollback",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);

    let events = http.get(gw.admin_addr, "/admin/events").await.json();
    let events = events["events"].as_array().unwrap().clone();
    let audit: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "admin_change")
        .collect();
    assert_eq!(audit.len(), 4, "{events:?}");
    assert!(
        audit.iter().all(|e| e["subject"] == "loopback-no-token"),
        "{audit:?}"
    );
    let last = audit.last().unwrap()["detail"].as_str().unwrap();
    let generation = gw.proxy().snapshot().generation;
    assert_eq!(
        last,
        format!("POST /admin/models/m/rollback: 200, generation {generation}")
    );
    let refused = events
        .iter()
        .filter(|e| e["kind"] == "admin_refused")
        .count();
    assert_eq!(refused, 7, "the refused GET is not a change: {events:?}");
}

#[tokio::test]
async fn tokens_have_roles_and_the_bearer_scheme_is_case_insensitive() {
    let gw = start(
        "server:\n  admin_token: op3rator\n  admin_tokens: [{ token: r3ader, role: read }, { token: sec0nd, role: operator }]\n",
    )
    .await;
    let http = Http::default();
    let json = ("content-type", "application/json");

    let none = weights(&http, &gw, &[json]).await;
    assert_refused(&none, 401, "authorization");
    assert_eq!(none.header("www-authenticate"), "Bearer");
    let wrong = weights(&http, &gw, &[json, ("authorization", "Bearer nope")]).await;
    assert_refused(&wrong, 401, "authorization");

    let reader = [("authorization", "Bearer r3ader")];
    let ans = http
        .call(
            "GET",
            gw.admin_addr,
            "/admin/replicas",
            &reader,
            Bytes::new(),
        )
        .await;
    assert_eq!(ans.status, 200);
    let ans = weights(&http, &gw, &[json, reader[0]]).await;
    assert_refused(&ans, 403, "authorization");

    for scheme in ["bearer op3rator", "BEARER op3rator", "Bearer sec0nd"] {
        let ans = weights(&http, &gw, &[json, ("authorization", scheme)]).await;
        assert_eq!(ans.status, 200, "{scheme}: {:?}", ans.body);
    }
    // A token is not something a browser attaches by itself: with one, the
    // Host may be any name the operator reaches the gateway by.
    let ans = http
        .call(
            "GET",
            gw.admin_addr,
            "/admin/replicas",
            &[reader[0], ("host", "gateway.internal:9090")],
            Bytes::new(),
        )
        .await;
    assert_eq!(ans.status, 200);
    // Cross-site stays refused even with a token.
    let ans = weights(
        &http,
        &gw,
        &[
            json,
            ("authorization", "Bearer op3rator"),
            ("origin", "http://evil.example"),
        ],
    )
    .await;
    assert_refused(&ans, 403, "origin");

    let events = http
        .call("GET", gw.admin_addr, "/admin/events", &reader, Bytes::new())
        .await
        .json();
    let who: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "admin_change")
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        who,
        [
            "operator (server.admin_token)",
            "operator (server.admin_token)",
            "operator (server.admin_tokens[1])"
        ]
    );
}

#[tokio::test]
async fn every_admin_error_has_one_shape() {
    let gw = start("").await;
    let http = Http::default();
    let missing = http.get(gw.admin_addr, "/admin/nope").await;
    assert_refused(&missing, 404, "");
    let method = http
        .call(
            "DELETE",
            gw.admin_addr,
            "/admin/replicas",
            &[],
            Bytes::new(),
        )
        .await;
    assert_refused(&method, 405, "");
    let not_utf8 = http
        .call(
            "POST",
            gw.admin_addr,
            "/admin/config",
            &[("content-type", "application/yaml")],
            Bytes::from_static(b"\xff\xfe"),
        )
        .await;
    assert_refused(&not_utf8, 400, "");
    let bad = within(http.post(
        gw.admin_addr,
        "/admin/models/m/weights",
        &serde_json::json!([1]),
    ))
    .await;
    assert_refused(&bad, 400, "");
}
