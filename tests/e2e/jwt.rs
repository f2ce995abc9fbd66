//! JWT/OIDC client auth against a JWKS server the test runs on loopback:
//! valid tokens name a tenant whose limits apply; every failed check is a
//! 401 that says which (never echoing the token); a valid token for an
//! unknown tenant is a 403; rotated keys are picked up after a refetch; an
//! IdP outage keeps the last good keys; two issuers side by side.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::scripted::{Scripted, Step};
use switchyard_tests::{Answer, Http, chat, replicas};

#[path = "../../gateway/proxy/src/jwt/test_signer.rs"]
mod signer;
use signer::{Signer, unix_now};

/// A JWKS endpoint whose document and availability the test switches.
struct Idp {
    doc: Arc<Mutex<String>>,
    down: Arc<AtomicBool>,
    server: Scripted,
}

impl Idp {
    async fn start(keys: &[&Signer]) -> Self {
        let doc = Arc::new(Mutex::new(Signer::jwks(keys)));
        let down = Arc::new(AtomicBool::new(false));
        let (d, dn) = (Arc::clone(&doc), Arc::clone(&down));
        let server = Scripted::start(move |_| {
            if dn.load(Ordering::SeqCst) {
                return vec![Step::write(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )];
            }
            let body = d.lock().unwrap().clone();
            vec![Step::write(format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=3600\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ))]
        })
        .await;
        Self { doc, down, server }
    }

    fn publish(&self, keys: &[&Signer]) {
        *self.doc.lock().unwrap() = Signer::jwks(keys);
    }

    fn url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.server.url())
    }
}

fn yaml(idp: &str, extra_issuer: &str) -> String {
    format!(
        r#"
clouds: {{ c: {{ provider: private }} }}
models:
  - {{ name: m, versions: [{{ name: v1, weight: 100 }}] }}
  - {{ name: n, versions: [{{ name: v1, weight: 100 }}] }}
replicas:
  - {{ id: r, model: m, cloud: c, url: "${{R_URL}}" }}
  - {{ id: s, model: n, cloud: c, url: "${{S_URL}}" }}
tenants:
  - {{ name: acme, models: [m], requests_per_minute: 3 }}
  - {{ name: globex, keys: [{{ id: g, key: globex-key }}] }}
auth:
  jwt:
    - issuer: https://idp.test
      audiences: [switchyard]
      jwks_uri: "{idp}"
      algorithms: [ES256, EdDSA]
      tenant_claim: org.tenant
      jwks_refresh_s: 1
      jwks_min_refetch_ms: 200
{extra_issuer}"#
    )
}

fn claims(tenant: &str) -> serde_json::Value {
    let now = unix_now();
    json!({"iss": "https://idp.test", "aud": "switchyard", "sub": "u1",
           "iat": now, "exp": now + 300, "org": {"tenant": tenant}})
}

async fn call(http: &Http, addr: std::net::SocketAddr, model: &str, token: &str) -> Answer {
    let auth = format!("Bearer {token}");
    let h = [
        ("content-type", "application/json"),
        ("authorization", &auth),
    ];
    let body = chat(model, false).to_string();
    http.call("POST", addr, "/v1/chat/completions", &h, body)
        .await
}

/// Calls until the answer is not 401 (the fetcher is off the request
/// path); bounded by the test's 10 s.
async fn until_accepted(http: &Http, addr: std::net::SocketAddr, token: &str) -> Answer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ans = call(http, addr, "m", token).await;
        if ans.status != 401 || tokio::time::Instant::now() > deadline {
            return ans;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_refused(ans: &Answer, status: u16, code: &str, says: &str, token: &str) {
    assert_eq!(ans.status, status, "{:?}", ans.body);
    let e = &ans.json()["error"];
    assert_eq!(e["code"], code, "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains(says), "`{msg}` should say `{says}`");
    assert!(
        !String::from_utf8_lossy(&ans.body).contains(token),
        "the token was echoed"
    );
}

#[tokio::test]
async fn valid_tokens_name_a_tenant_whose_limits_apply_and_bad_ones_say_why() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("s", ReplicaConfig::default()),
    ])
    .await;
    let key = Signer::es256("k1");
    let idp = Idp::start(&[&key]).await;
    let gw = switchyard_tests::gateway(&yaml(&idp.url(), ""), &fleet).await;
    let (http, addr) = (Http::default(), gw.data_addr);

    let good = key.token(&claims("acme"));
    let ok = until_accepted(&http, addr, &good).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let sent = fleet["r"].last_request().unwrap();
    assert!(
        sent.headers.get("authorization").is_none(),
        "the token reached a replica"
    );
    // acme may call `m` only, and 3 requests a minute.
    assert_refused(
        &call(&http, addr, "n", &good).await,
        403,
        "model_not_allowed",
        "acme",
        &good,
    );
    assert_eq!(call(&http, addr, "m", &good).await.status, 200);
    let limited = call(&http, addr, "m", &good).await;
    assert_eq!(limited.status, 429, "{:?}", limited.body);
    // API keys keep working next to tokens.
    let h = [
        ("content-type", "application/json"),
        ("x-api-key", "globex-key"),
    ];
    let by_key = http.call(
        "POST",
        addr,
        "/v1/chat/completions",
        &h,
        chat("n", false).to_string(),
    );
    assert_eq!(by_key.await.status, 200);

    let mut c = claims("globex");
    c["exp"] = json!(unix_now() - 120);
    let expired = key.token(&c);
    assert_refused(
        &call(&http, addr, "m", &expired).await,
        401,
        "invalid_api_key",
        "expired",
        &expired,
    );
    let mut c = claims("globex");
    c["aud"] = json!("another-api");
    let t = key.token(&c);
    assert_refused(
        &call(&http, addr, "m", &t).await,
        401,
        "invalid_api_key",
        "audience",
        &t,
    );
    let mut c = claims("globex");
    c["iss"] = json!("https://evil.test");
    let t = key.token(&c);
    assert_refused(
        &call(&http, addr, "m", &t).await,
        401,
        "invalid_api_key",
        "issuer",
        &t,
    );
    let forged = Signer::es256("k1").token(&claims("globex"));
    assert_refused(
        &call(&http, addr, "m", &forged).await,
        401,
        "invalid_api_key",
        "signature",
        &forged,
    );
    let t = key.token(&claims("initech"));
    assert_refused(
        &call(&http, addr, "m", &t).await,
        403,
        "unknown_tenant",
        "initech",
        &t,
    );
    assert_eq!(
        ans_type(&call(&http, addr, "m", &t).await),
        "permission_error"
    );
    let none_alg = key.token_with(&json!({"alg": "none", "kid": "k1"}), &claims("globex"));
    assert_eq!(call(&http, addr, "m", &none_alg).await.status, 401);
    assert_eq!(fleet["s"].hits(), 1, "only the API-key call reached `n`");
}

fn ans_type(ans: &Answer) -> String {
    ans.json()["error"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn rotated_keys_are_picked_up_and_an_idp_outage_keeps_the_last_good_ones() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("s", ReplicaConfig::default()),
    ])
    .await;
    let old = Signer::es256("2026-11");
    let idp = Idp::start(&[&old]).await;
    let gw = switchyard_tests::gateway(&yaml(&idp.url(), ""), &fleet).await;
    let (http, addr) = (Http::default(), gw.data_addr);
    let ans = until_accepted(&http, addr, &old.token(&claims("globex"))).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);

    // The IdP rotates: the new key signs, the old one is withdrawn. The
    // first token with the new kid is refused without waiting on the IdP,
    // and asks for a refetch; a moment later it is accepted.
    let new = Signer::eddsa("2026-12");
    idp.publish(&[&new]);
    let fresh = new.token(&claims("globex"));
    let first = call(&http, addr, "m", &fresh).await;
    assert_refused(&first, 401, "invalid_api_key", "unknown key id", &fresh);
    let hits = idp.server.hits();
    let ans = until_accepted(&http, addr, &fresh).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    assert!(idp.server.hits() > hits, "a refetch brought the new key");

    // A flood of garbage kids does not hammer the IdP (200 ms apart at most).
    let before = idp.server.hits();
    let started = tokio::time::Instant::now();
    for i in 0..50 {
        let t = Signer::es256(&format!("junk-{i}")).token(&claims("globex"));
        assert_eq!(call(&http, addr, "m", &t).await.status, 401);
    }
    let allowed = started.elapsed().as_millis() / 200 + 2;
    let fetched = (idp.server.hits() - before) as u128;
    assert!(
        fetched <= allowed,
        "{fetched} fetches in {:?}",
        started.elapsed()
    );

    // The IdP goes down: fetches fail (every refresh second, with backoff),
    // and the last good keys keep working.
    idp.down.store(true, Ordering::SeqCst);
    let before = idp.server.hits();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while idp.server.hits() == before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(idp.server.hits() > before, "the fetcher tried the down IdP");
    assert_eq!(call(&http, addr, "m", &fresh).await.status, 200);
    assert_eq!(
        call(&http, addr, "m", &new.token(&claims("globex")))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&http, addr, "m", &old.token(&claims("globex")))
            .await
            .status,
        401
    );

    // Operators see the rotation and the outage once each in the feed.
    let events = http.get(gw.admin_addr, "/admin/events").await.json();
    let ours: Vec<(String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("jwks_"))
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["detail"].as_str().unwrap().into(),
            )
        })
        .collect();
    let kinds: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "jwks_keys_changed",
            "jwks_keys_changed",
            "jwks_fetch_failed"
        ],
        "{ours:?}"
    );
    assert!(ours[1].1.contains("[2026-12], were [2026-11]"), "{ours:?}");
    assert!(
        ours[2].1.contains("503") && ours[2].1.contains("keeping"),
        "{ours:?}"
    );
}

#[tokio::test]
async fn two_issuers_one_from_a_jwks_file_with_a_fixed_tenant() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("s", ReplicaConfig::default()),
    ])
    .await;
    let a = Signer::es256("a");
    let idp = Idp::start(&[&a]).await;
    let b = Signer::eddsa("b");
    let file = std::env::temp_dir().join(format!("switchyard-jwks-{}.json", std::process::id()));
    std::fs::write(&file, Signer::jwks(&[&b])).unwrap();
    let second = format!(
        "    - {{ issuer: \"https://partner.test\", audiences: [switchyard, api], jwks_file: \"{}\",\n\
         \x20       algorithms: [EdDSA], tenant: globex }}\n",
        file.display()
    );
    let gw = switchyard_tests::gateway(&yaml(&idp.url(), &second), &fleet).await;
    std::fs::remove_file(&file).unwrap();
    let (http, addr) = (Http::default(), gw.data_addr);

    let ans = until_accepted(&http, addr, &a.token(&claims("acme"))).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    let now = unix_now();
    let partner = json!({"iss": "https://partner.test", "aud": ["api"], "exp": now + 60});
    assert_eq!(call(&http, addr, "m", &b.token(&partner)).await.status, 200);
    assert_eq!(
        call(&http, addr, "n", &b.token(&partner)).await.status,
        200,
        "globex: all models"
    );
    // Each issuer's tokens verify only with its own keys.
    let crossed = a.token(&partner);
    assert_refused(
        &call(&http, addr, "m", &crossed).await,
        401,
        "invalid_api_key",
        "not allowed",
        &crossed,
    );
    let mut c = claims("acme");
    c["iss"] = json!("https://partner.test");
    let t = b.token(&c);
    assert_eq!(
        call(&http, addr, "n", &t).await.status,
        200,
        "the partner's tenant is fixed"
    );
}

#[tokio::test]
async fn an_issuer_added_by_a_reload_is_fetched_and_a_bad_one_is_refused() {
    let fleet = replicas(&[
        ("r", ReplicaConfig::default()),
        ("s", ReplicaConfig::default()),
    ])
    .await;
    let key = Signer::es256("k1");
    let idp = Idp::start(&[&key]).await;
    // Start with API keys only: no verifier, no fetcher work.
    let keys_only = yaml(&idp.url(), "")
        .split("auth:")
        .next()
        .unwrap()
        .to_owned()
        .replace(
            "{ name: acme, models: [m], requests_per_minute: 3 }",
            "{ name: acme, keys: [{ id: a, key: acme-key }] }",
        );
    let gw = switchyard_tests::gateway(&keys_only, &fleet).await;
    let (http, addr) = (Http::default(), gw.data_addr);
    let token = key.token(&claims("acme"));
    assert_eq!(call(&http, addr, "m", &token).await.status, 401);
    assert_eq!(idp.server.hits(), 0);

    let post = |body: String| {
        let h = [("content-type", "application/yaml")];
        let http = Http::default();
        async move {
            http.call("POST", gw.admin_addr, "/admin/config", &h, body)
                .await
        }
    };
    let urls = |y: String| {
        y.replace("${R_URL}", &fleet["r"].url())
            .replace("${S_URL}", &fleet["s"].url())
    };
    let bad =
        urls(yaml(&idp.url(), "").replace("algorithms: [ES256, EdDSA]", "algorithms: [HS256]"));
    let refused = post(bad).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert!(String::from_utf8_lossy(&refused.body).contains("auth.jwt[0].algorithms[0]"));
    assert_eq!(
        call(&http, addr, "m", &token).await.status,
        401,
        "old config serves"
    );

    let applied = post(urls(yaml(&idp.url(), ""))).await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    let ans = until_accepted(&http, addr, &token).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    assert!(idp.server.hits() >= 1);
}
