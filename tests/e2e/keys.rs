//! Runtime API keys (`/admin/keys`): created keys authenticate at once, a
//! revoked key fails on the next request, rotation with and without grace,
//! keys follow their tenant through reloads and the state file through a
//! restart; the listing never shows a key; roles and refusals.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Answer, Http, chat, replicas, within};

const YAML: &str = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r, model: m, cloud: c, url: "${R_URL}" }]
tenants:
  - { name: app, keys: [{ id: cfg, key: config-key }] }
  - { name: batch, keys: [{ id: b, key: batch-key }], max_priority: low }
"#;

fn state_file(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "sy-e2e-keys-{tag}-{}-{nanos}.json",
        std::process::id()
    ))
}

async fn infer(http: &Http, gw: &switchyard_gateway::Running, key: &str) -> Answer {
    let auth = format!("Bearer {key}");
    http.call(
        "POST",
        gw.data_addr,
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        chat("m", false).to_string(),
    )
    .await
}

async fn admin(
    http: &Http,
    gw: &switchyard_gateway::Running,
    path: &str,
    body: serde_json::Value,
) -> Answer {
    http.post(gw.admin_addr, path, &body).await
}

#[tokio::test]
async fn a_created_key_works_at_once_and_a_revoked_one_fails_on_the_next_request() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(YAML, &fleet).await;
    let file = state_file("revoke");
    gw.open_keys(&file).unwrap();
    let http = Http::default();

    let made = admin(
        &http,
        &gw,
        "/admin/keys",
        serde_json::json!({"tenant": "app", "name": "ci"}),
    )
    .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let made = made.json();
    let key = made["key"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-sy-") && key.len() >= 40, "{key}");
    assert_eq!(made["tenant"], "app");
    assert_eq!(infer(&http, &gw, &key).await.status, 200);
    assert_eq!(
        infer(&http, &gw, "config-key").await.status,
        200,
        "config keys still work"
    );

    // The listing: metadata, never the key or its hash; config keys too.
    let listed = http.get(gw.admin_addr, "/admin/keys").await;
    assert_eq!(listed.status, 200);
    let text = String::from_utf8_lossy(&listed.body).into_owned();
    assert!(
        !text.contains(&key[6..]) && !text.contains("sha256"),
        "{text}"
    );
    let keys = listed.json()["keys"].as_array().unwrap().clone();
    let mine = keys.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(mine["prefix"].as_str().unwrap(), &key[..12]);
    assert_eq!(
        (mine["name"].as_str(), mine["revoked"].as_bool()),
        (Some("ci"), Some(false))
    );
    assert!(
        keys.iter()
            .any(|k| k["id"] == "cfg" && k["source"] == "config")
    );

    // Revoke, then the very next request is refused (well within 1 s).
    let revoked_at = Instant::now();
    let rev = admin(
        &http,
        &gw,
        &format!("/admin/keys/{id}/revoke"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(rev.status, 200, "{:?}", rev.body);
    assert_eq!(rev.json()["revoked"], true);
    let refused = infer(&http, &gw, &key).await;
    assert_eq!(refused.status, 401);
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    let again = admin(
        &http,
        &gw,
        &format!("/admin/keys/{id}/revoke"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(again.status, 409);

    // The audit trail names the key by id and prefix, never the key.
    let events = http.get(gw.admin_addr, "/admin/events").await;
    let text = String::from_utf8_lossy(&events.body).into_owned();
    assert!(!text.contains(&key[6..]));
    let kinds: Vec<String> = events.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"].as_str().unwrap_or("").contains(&id))
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    // The key's own events, and the guard's audit records of the two
    // revoke calls (the second refused with 409).
    assert_eq!(
        kinds,
        [
            "key_created",
            "key_revoked",
            "admin_change",
            "admin_refused"
        ]
    );
    within(gw.shutdown()).await.unwrap();
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn rotation_hands_over_with_or_without_a_grace_period() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(YAML, &fleet).await;
    let file = state_file("rotate");
    gw.open_keys(&file).unwrap();
    let http = Http::default();
    let first = admin(
        &http,
        &gw,
        "/admin/keys",
        serde_json::json!({"tenant": "batch"}),
    )
    .await
    .json();
    let (k1, id1) = (
        first["key"].as_str().unwrap(),
        first["id"].as_str().unwrap(),
    );

    let graced = admin(
        &http,
        &gw,
        &format!("/admin/keys/{id1}/rotate"),
        serde_json::json!({"grace_s": 600}),
    )
    .await;
    assert_eq!(graced.status, 201, "{:?}", graced.body);
    let graced = graced.json();
    let (k2, id2) = (
        graced["key"].as_str().unwrap(),
        graced["id"].as_str().unwrap(),
    );
    assert_eq!(graced["old"]["state"], "expiring");
    assert_eq!(graced["replaces"], id1);
    assert_eq!(
        infer(&http, &gw, k1).await.status,
        200,
        "old key during the grace"
    );
    assert_eq!(infer(&http, &gw, k2).await.status, 200);

    let now = http
        .call(
            "POST",
            gw.admin_addr,
            &format!("/admin/keys/{id2}/rotate"),
            &[],
            "",
        )
        .await;
    assert_eq!(now.status, 201, "{:?}", now.body);
    let k3 = now.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        infer(&http, &gw, k2).await.status,
        401,
        "no grace: revoked at once"
    );
    assert_eq!(infer(&http, &gw, &k3).await.status, 200);
    let bad = admin(
        &http,
        &gw,
        &format!("/admin/keys/{id1}/rotate"),
        serde_json::json!({"grace_s": "x"}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["errors"][0]["field"], "body");
    within(gw.shutdown()).await.unwrap();
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn keys_follow_their_tenant_through_reloads_and_the_file_through_a_restart() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(YAML, &fleet).await;
    let file = state_file("restart");
    gw.open_keys(&file).unwrap();
    let http = Http::default();
    let made = admin(
        &http,
        &gw,
        "/admin/keys",
        serde_json::json!({"tenant": "batch"}),
    )
    .await
    .json();
    let key = made["key"].as_str().unwrap().to_owned();

    // The tenant leaves the config: its runtime key stops working; back, it works again.
    let url = fleet["r"].url();
    let without = YAML.replace("${R_URL}", &url).replace(
        "  - { name: batch, keys: [{ id: b, key: batch-key }], max_priority: low }\n",
        "",
    );
    let yaml = |body: &str| {
        let body = body.to_owned();
        let http = http.clone();
        let addr = gw.admin_addr;
        async move {
            http.call(
                "POST",
                addr,
                "/admin/config",
                &[("content-type", "application/yaml")],
                body,
            )
            .await
        }
    };
    assert_eq!(yaml(&without).await.status, 200);
    assert_eq!(infer(&http, &gw, &key).await.status, 401);
    let listed = http.get(gw.admin_addr, "/admin/keys").await.json();
    assert_eq!(listed["keys"][0]["tenant_configured"], false);
    assert_eq!(
        admin(
            &http,
            &gw,
            "/admin/keys",
            serde_json::json!({"tenant": "batch"})
        )
        .await
        .status,
        422
    );
    assert_eq!(yaml(&YAML.replace("${R_URL}", &url)).await.status, 200);
    assert_eq!(infer(&http, &gw, &key).await.status, 200);
    within(gw.shutdown()).await.unwrap();

    // A new gateway on the same state file knows the key.
    let gw = switchyard_tests::gateway(YAML, &fleet).await;
    assert_eq!(gw.open_keys(&file).unwrap(), 1);
    assert_eq!(infer(&http, &gw, &key).await.status, 200);
    within(gw.shutdown()).await.unwrap();

    // A corrupt file is refused with its name.
    std::fs::write(&file, "{\"version\": 1, \"keys\": [").unwrap();
    let gw = switchyard_tests::gateway(YAML, &fleet).await;
    let e = gw.open_keys(&file).unwrap_err().to_string();
    assert!(e.contains(&file.display().to_string()), "{e}");
    within(gw.shutdown()).await.unwrap();
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn read_tokens_list_operators_change_and_bad_requests_say_why() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let yaml = format!(
        "server:\n  admin_tokens: [{{ token: reader-token-123, role: read }}, {{ token: operator-token-123, role: operator }}]\n{YAML}"
    );
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    let http = Http::default();
    let call = |token: &'static str, body: &'static str| {
        let http = http.clone();
        let addr = gw.admin_addr;
        async move {
            let auth = format!("Bearer {token}");
            let h = [
                ("content-type", "application/json"),
                ("authorization", auth.as_str()),
            ];
            http.call("POST", addr, "/admin/keys", &h, body).await
        }
    };
    // No state file yet: refused, nothing is made that a restart would lose.
    let none = call("operator-token-123", r#"{"tenant": "app"}"#).await;
    assert_eq!(none.status, 409, "{:?}", none.body);
    assert!(
        none.json()["error"]
            .as_str()
            .unwrap()
            .contains("state file")
    );

    let file = state_file("roles");
    gw.open_keys(&file).unwrap();
    assert_eq!(
        call("reader-token-123", r#"{"tenant": "app"}"#)
            .await
            .status,
        403
    );
    let unknown = call("operator-token-123", r#"{"tenant": "nobody"}"#).await;
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.json()["errors"][0]["field"], "tenant");
    let typo = call("operator-token-123", r#"{"tenant": "app", "nmae": "x"}"#).await;
    assert_eq!(typo.status, 400);
    assert!(typo.json()["error"].as_str().unwrap().contains("nmae"));
    assert_eq!(
        call("operator-token-123", r#"{"tenant": "app"}"#)
            .await
            .status,
        201
    );
    let listed = http
        .call(
            "GET",
            gw.admin_addr,
            "/admin/keys",
            &[("authorization", "Bearer reader-token-123")],
            "",
        )
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["keys"][0]["tenant"], "app");
    let missing = http
        .call(
            "POST",
            gw.admin_addr,
            "/admin/keys/key_nope/revoke",
            &[("authorization", "Bearer operator-token-123")],
            "",
        )
        .await;
    assert_eq!(missing.status, 404);
    within(gw.shutdown()).await.unwrap();
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn the_demo_has_a_tenant_key_and_still_serves_without_one() {
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let demo = switchyard_demo::Demo::start(any, any, false).await.unwrap();
    let gw = demo.running();
    let http = Http::default();
    let key = demo.api_key().to_owned();
    assert!(key.starts_with("sk-sy-"), "{key}");
    let ask = |key: Option<String>| {
        let http = http.clone();
        let addr = gw.data_addr;
        async move {
            let auth = key.map(|k| format!("Bearer {k}"));
            let mut h = vec![("content-type", "application/json")];
            if let Some(a) = &auth {
                h.push(("authorization", a.as_str()));
            }
            let body = serde_json::json!({"model": "chat-small", "messages": [{"role": "user", "content": "hi"}]});
            http.call("POST", addr, "/v1/chat/completions", &h, body.to_string())
                .await
        }
    };
    assert_eq!(
        ask(None).await.status,
        200,
        "no key: served (loopback demo)"
    );
    assert_eq!(ask(Some(key)).await.status, 200);
    assert_eq!(ask(Some("sk-sy-wrong".into())).await.status, 401);
    // The demo keeps runtime keys too.
    let made = admin(
        &http,
        gw,
        "/admin/keys",
        serde_json::json!({"tenant": "demo"}),
    )
    .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let made = made.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(ask(Some(made)).await.status, 200);
    within(demo.shutdown()).await.unwrap();
}
