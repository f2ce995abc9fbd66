//! Tokens per minute and spend budgets per tenant and key: reserved before
//! the call, corrected by the usage the answer reports; 429
//! `rate_limit_exceeded` / `insufficient_quota` with `Retry-After`;
//! OpenAI's `x-ratelimit-*` headers; spend per tenant and key in
//! `/admin/costs` and `/metrics`.

use switchyard_fake_replica::ReplicaConfig;
use switchyard_gateway::Running;
use switchyard_tests::observe::LogCapture;
use switchyard_tests::{Answer, Http, eventually, replicas};

fn yaml() -> &'static str {
    r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: r, model: m, cloud: c, url: "${R_URL}", cost: { input_per_1k: 1.0, output_per_1k: 1.0 } }
tenants:
  - name: app
    keys: [{ id: a1, key: app-key, requests_per_minute: 5 }]
    tokens_per_minute: 1000
  - name: team
    keys:
      - { id: b1, key: b1-key, monthly_budget_usd: 0.05 }
      - { id: b2, key: b2-key }
    daily_budget_usd: 0.1
  - name: free
    keys: [{ id: f1, key: free-key }]
"#
}

/// Sends one request and waits until its answer is booked (the body's
/// drop settles the reservation), so the next request sees its effect.
async fn call(gw: &Running, http: &Http, key: &str, max_tokens: u32) -> Answer {
    let ans = send(http, gw.data_addr, key, max_tokens).await;
    eventually("every reservation settled", || {
        gw.proxy()
            .tenant_limits()
            .figures()
            .iter()
            .all(|r| r.figures.reserved == 0.0)
    })
    .await;
    ans
}

async fn send(http: &Http, addr: std::net::SocketAddr, key: &str, max_tokens: u32) -> Answer {
    let body = serde_json::json!({
        "model": "m",
        "max_tokens": max_tokens,
        "messages": [{ "role": "user", "content": "Say hello" }],
    });
    http.call(
        "POST",
        addr,
        "/v1/chat/completions",
        &[("content-type", "application/json"), ("x-api-key", key)],
        body.to_string(),
    )
    .await
}

fn num(ans: &Answer, header: &str) -> u64 {
    ans.header(header)
        .parse()
        .unwrap_or_else(|_| panic!("{header}: {:?}", ans.header(header)))
}

fn assert_429(ans: &Answer, code: &str, says: &str) {
    assert_eq!(ans.status, 429, "{:?}", ans.body);
    let e = &ans.json()["error"];
    assert_eq!(e["code"], code, "{e}");
    if code == "insufficient_quota" {
        assert_eq!(e["type"], "insufficient_quota", "{e}");
    }
    assert!(e["message"].as_str().unwrap().contains(says), "{e}");
    assert!(num(ans, "retry-after") >= 1);
}

#[tokio::test]
async fn tokens_per_minute_are_reserved_refunded_and_shown_in_openai_headers() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(yaml(), &fleet).await;
    let http = Http::default();

    let first = call(&gw, &http, "app-key", 600).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(num(&first, "x-ratelimit-limit-tokens"), 1000);
    // ~11 input tokens (the prompt's bytes / 4) + 600 reserved.
    let left = num(&first, "x-ratelimit-remaining-tokens");
    assert!((380..=390).contains(&left), "{left}");
    assert!(first.header("x-ratelimit-reset-tokens").ends_with('s'));
    assert_eq!(
        (
            num(&first, "x-ratelimit-limit-requests"),
            num(&first, "x-ratelimit-remaining-requests")
        ),
        (5, 4),
        "the key's request window"
    );
    // The answer used ~40 tokens: the rest came back, so another 600 fits.
    let second = call(&gw, &http, "app-key", 600).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert!(num(&second, "x-ratelimit-remaining-tokens") >= 300);

    // More than the whole minute: it waits for a full bucket.
    let big = call(&gw, &http, "app-key", 5000).await;
    assert_429(
        &big,
        "rate_limit_exceeded",
        "tenant `app` is over its tokens_per_minute",
    );
    assert_eq!(num(&big, "x-ratelimit-limit-tokens"), 1000);
    assert_eq!(fleet["r"].hits(), 2, "the refused request never left");

    // The key's 5 requests a minute (the refused one counted too).
    for _ in 0..2 {
        assert_eq!(call(&gw, &http, "app-key", 10).await.status, 200);
    }
    let over = call(&gw, &http, "app-key", 10).await;
    assert_429(
        &over,
        "rate_limit_exceeded",
        "key `a1` of tenant `app` is over its requests_per_minute",
    );
    assert_eq!(num(&over, "x-ratelimit-remaining-requests"), 0);
    assert_eq!(num(&over, "retry-after"), 12);

    // A tenant without rate limits gets no rate-limit headers.
    let free = call(&gw, &http, "free-key", 10).await;
    assert_eq!(free.status, 200);
    assert_eq!(free.header("x-ratelimit-limit-requests"), "");
    assert_eq!(free.header("x-ratelimit-limit-tokens"), "");
}

#[tokio::test]
async fn spend_budgets_of_tenants_and_keys_answer_insufficient_quota() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(yaml(), &fleet).await;
    let http = Http::default();

    // Each answer reports ~41 tokens at 1.0 per 1k: ~0.041.
    // b1's own month: 0.05 lets a second request in, not a third.
    for _ in 0..2 {
        assert_eq!(call(&gw, &http, "b1-key", 16).await.status, 200);
    }
    let b1 = call(&gw, &http, "b1-key", 16).await;
    assert_429(
        &b1,
        "insufficient_quota",
        "key `b1` of tenant `team` has used its monthly budget of 0.05 USD",
    );
    // The tenant's day (0.1) has room for one more, from its other key.
    assert_eq!(call(&gw, &http, "b2-key", 16).await.status, 200);
    let b2 = call(&gw, &http, "b2-key", 16).await;
    assert_429(
        &b2,
        "insufficient_quota",
        "tenant `team` has used its daily budget of 0.1 USD",
    );
    assert!(
        num(&b2, "retry-after") <= 86_400,
        "until the next UTC midnight"
    );
    assert_eq!(fleet["r"].hits(), 3);
    assert_eq!(
        call(&gw, &http, "free-key", 16).await.status,
        200,
        "other tenants are untouched"
    );

    // The tenant's spend is the cost ledger's, priced alike.
    let costs = http.get(gw.admin_addr, "/admin/costs").await.json();
    let ledger = costs["total"]["spend"].as_f64().unwrap();
    let team = &costs["by_tenant"]["team"];
    let free = costs["by_tenant"]["free"]["spend"].as_f64().unwrap();
    let spend = team["spend"].as_f64().unwrap();
    assert!((spend + free - ledger).abs() < 1e-9, "{costs}");
    assert!(
        (0.1..0.15).contains(&spend),
        "over by at most one request: {spend}"
    );
    assert_eq!(team["requests"], 3);
    assert_eq!(team["spend_today"], team["spend"]);
    assert_eq!(team["by_key"]["b1"]["requests"], 2);
    assert_eq!(team["by_key"]["b1"]["limits"]["monthly_budget_usd"], 0.05);
    assert_eq!(team["limits"]["daily_budget_usd"], 0.1);
    let metrics =
        String::from_utf8_lossy(&http.get(gw.admin_addr, "/metrics").await.body).into_owned();
    for series in [
        r#"switchyard_tenant_spend_total{tenant="team",key="b1"}"#,
        r#"switchyard_tenant_requests_total{tenant="team",key="b2"} 1"#,
        r#"switchyard_tenant_tokens_total{tenant="free",key="f1",direction="output"} 16"#,
    ] {
        assert!(metrics.contains(series), "{series} in:\n{metrics}");
    }
    assert!(!metrics.contains("b1-key"), "never the key");
}

#[tokio::test]
async fn a_failed_request_is_refunded_and_a_stream_is_booked_from_its_usage() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(yaml(), &fleet).await;
    let http = Http::default();

    fleet["r"].fail_next(10);
    let failed = call(&gw, &http, "app-key", 600).await;
    assert!(failed.status.is_server_error(), "{:?}", failed.body);
    fleet["r"].fail_next(0);
    // Had the failed request's 611 tokens stayed reserved, 600 more would not fit.
    let ok = call(&gw, &http, "app-key", 600).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);

    let body = serde_json::json!({
        "model": "m",
        "stream": true,
        "max_tokens": 10,
        "messages": [{ "role": "user", "content": "Say hello" }],
    });
    let stream = http
        .call(
            "POST",
            gw.data_addr,
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("x-api-key", "app-key"),
            ],
            body.to_string(),
        )
        .await;
    assert_eq!(stream.status, 200);
    assert!(!stream.sse_data().is_empty());
    eventually("the stream is booked", || {
        gw.proxy().tenant_limits().figures()[0].figures.requests == 2
    })
    .await;
    let costs = http.get(gw.admin_addr, "/admin/costs").await.json();
    let app = &costs["by_tenant"]["app"];
    assert_eq!(app["requests"], 2, "{app}");
    assert_eq!(app["unknown_usage"], 0, "{app}");
    // 16 tokens for the first answer, 10 (its max_tokens) for the stream.
    assert_eq!(app["output_tokens"], 26, "{app}");
    assert_eq!(app["reserved"], 0.0, "nothing left reserved: {app}");
}

#[tokio::test]
async fn the_access_log_names_the_tenant_and_key_id_never_the_key() {
    let logs = LogCapture::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = ::tracing::subscriber::set_default(subscriber);

    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(yaml(), &fleet).await;
    let ok = call(&gw, &Http::default(), "b1-key", 16).await;
    assert_eq!(ok.status, 200);
    eventually("the access line", || {
        String::from_utf8_lossy(&logs.0.lock().unwrap()).contains("switchyard::access")
    })
    .await;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let line = logs
        .lines()
        .find(|l| l.contains("switchyard::access"))
        .unwrap();
    assert!(line.contains("tenant=\"team\""), "{line}");
    assert!(line.contains("key_id=\"b1\""), "{line}");
    // The path and request id are kept for this line (only when it is written).
    assert!(line.contains("path=\"/v1/"), "{line}");
    assert!(!line.contains("request_id=\"-\""), "{line}");
    assert!(!logs.contains("b1-key"), "the key itself is never logged");
}
