//! `server.cors`: browsers' preflights are answered without an API key,
//! answers to an allowed origin (success, error, stream) carry the CORS
//! headers, other origins get none (and a 403 preflight); without `cors`
//! nothing changes and `OPTIONS` stays 405.

use std::net::SocketAddr;

use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Answer, Http, chat, replicas};

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.com";

fn yaml(cors: &str) -> String {
    format!(
        r#"
server:
{cors}
clouds: {{ c: {{ provider: private }} }}
models:
  - {{ name: m, versions: [{{ name: v1, weight: 100 }}] }}
  - {{ name: resnet, versions: [{{ name: "1", weight: 100 }}] }}
replicas:
  - {{ id: r, model: m, cloud: c, url: "${{R_URL}}" }}
  - {{ id: k, model: resnet, cloud: c, url: "${{K_URL}}", protocol: kserve_v2 }}
tenants:
  - name: app
    keys: [{{ id: a1, key: app-key }}]
"#
    )
}

const CORS: &str = r#"  cors:
    allow_origins: ["https://app.example.com"]
    allow_headers: [x-trace]
    max_age_s: 600"#;

async fn preflight(http: &Http, addr: SocketAddr, path: &str, origin: &str) -> Answer {
    http.call(
        "OPTIONS",
        addr,
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type, x-switchyard-priority",
            ),
        ],
        "",
    )
    .await
}

async fn chat_from(http: &Http, addr: SocketAddr, origin: &str, key: bool, stream: bool) -> Answer {
    let mut h = vec![("content-type", "application/json"), ("origin", origin)];
    if key {
        h.push(("authorization", "Bearer app-key"));
    }
    http.call(
        "POST",
        addr,
        "/v1/chat/completions",
        &h,
        chat("m", stream).to_string(),
    )
    .await
}

fn assert_cors(ans: &Answer) {
    assert_eq!(
        ans.header("access-control-allow-origin"),
        APP,
        "{:?}",
        ans.headers
    );
    assert!(ans.header("vary").contains("origin"), "{:?}", ans.headers);
    let exposed = ans.header("access-control-expose-headers");
    assert!(exposed.contains("x-request-id"), "{exposed}");
}

fn assert_no_cors(ans: &Answer) {
    for h in [
        "access-control-allow-origin",
        "access-control-expose-headers",
    ] {
        assert!(ans.headers.get(h).is_none(), "{h}: {:?}", ans.headers);
    }
}

#[tokio::test]
async fn a_preflight_needs_no_key_and_names_methods_headers_and_max_age() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("k", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(&yaml(CORS), &fleet).await;
    let http = Http::default();
    let addr = gw.data_addr;

    for path in [
        "/v1/chat/completions",
        "/v1/models",
        "/v2/models/resnet/infer",
    ] {
        let ans = preflight(&http, addr, path, APP).await;
        assert_eq!(ans.status, 204, "{path}: {:?}", ans.body);
        assert_cors(&ans);
        let methods = ans.header("access-control-allow-methods");
        assert!(methods.contains("OPTIONS"), "{methods}");
        let allowed = ans.header("access-control-allow-headers");
        for h in [
            "authorization",
            "content-type",
            "x-api-key",
            "api-key",
            "x-trace",
            "x-switchyard-priority",
        ] {
            assert!(allowed.contains(h), "{h} not in {allowed}");
        }
        assert_eq!(ans.header("access-control-max-age"), "600");
    }
    let ans = preflight(&http, addr, "/v1/chat/completions", APP).await;
    assert_eq!(ans.header("access-control-allow-methods"), "POST, OPTIONS");
    assert_eq!(fleet["r"].hits(), 0, "a preflight never reaches a replica");

    let evil = preflight(&http, addr, "/v1/chat/completions", EVIL).await;
    assert_eq!(evil.status, 403);
    assert_eq!(evil.json()["error"]["code"], "origin_not_allowed");
    assert_no_cors(&evil);
    let kserve = preflight(&http, addr, "/v2/models/resnet/infer", EVIL).await;
    assert_eq!(kserve.status, 403);
    assert!(kserve.json()["error"].is_string(), "KServe's error shape");

    let unknown = preflight(&http, addr, "/v1/nothing", APP).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn answers_to_an_allowed_origin_carry_cors_headers_others_none() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("k", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(&yaml(CORS), &fleet).await;
    let http = Http::default();
    let addr = gw.data_addr;

    let ok = chat_from(&http, addr, APP, true, false).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_cors(&ok);
    let exposed = ok.header("access-control-expose-headers");
    let own: Vec<_> = ok
        .headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-switchyard-"))
        .collect();
    assert!(
        !own.is_empty(),
        "the gateway names the replica: {:?}",
        ok.headers
    );
    for k in &own {
        assert!(exposed.contains(k.as_str()), "{k} not in {exposed}");
    }

    let stream = chat_from(&http, addr, APP, true, true).await;
    assert_eq!(stream.status, 200);
    assert!(!stream.sse_data().is_empty());
    assert_cors(&stream);

    let unauthorized = chat_from(&http, addr, APP, false, false).await;
    assert_eq!(unauthorized.status, 401);
    assert_cors(&unauthorized);

    let evil = chat_from(&http, addr, EVIL, true, false).await;
    assert_eq!(
        evil.status, 200,
        "the gateway serves; the browser keeps it from the page"
    );
    assert_no_cors(&evil);
}

#[tokio::test]
async fn without_cors_options_stays_405_and_answers_are_unchanged() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("k", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(&yaml("  limits: {}"), &fleet).await;
    let http = Http::default();
    let addr = gw.data_addr;

    let ans = preflight(&http, addr, "/v1/chat/completions", APP).await;
    assert_eq!(ans.status, 405);
    assert_no_cors(&ans);
    let ok = chat_from(&http, addr, APP, true, false).await;
    assert_eq!(ok.status, 200);
    assert_no_cors(&ok);
    assert!(
        ok.headers
            .get("vary")
            .is_none_or(|v| !v.to_str().unwrap().contains("origin"))
    );
}
