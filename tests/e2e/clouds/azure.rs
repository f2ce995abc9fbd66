//! `protocol: azure_openai` against a fake Azure that checks `api-key` and
//! `api-version` as Azure does.

use std::time::Duration;

use serde_json::json;
use switchyard_fake_replica::{FakeProtocol, TEST_AZURE_API_KEY};
use switchyard_tests::{Http, chat};

use super::{fake, start, stream_parts};

const CONFIG: &str = r#"
clouds: { azure-we: { provider: azure, region: westeurope } }
models: [{ name: gpt, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - id: az
    model: gpt
    cloud: azure-we
    url: "${URL}"
    protocol: azure_openai
    azure: { deployment: gpt-4o-mini, api_version: "2024-06-01" }
    auth: { header: api-key, value: "${KEY}" }
"#;

#[tokio::test]
async fn chat_stream_and_embeddings_reach_the_deployment_paths() {
    let replica = fake("az", FakeProtocol::azure(), 4).await;
    let gw = start(
        CONFIG,
        &[("URL", replica.url()), ("KEY", TEST_AZURE_API_KEY.into())],
    )
    .await;
    let http = Http::default();

    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("gpt", false))
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let body = a.json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3"
    );
    assert_eq!(body["usage"]["completion_tokens"], 4);
    let sent = replica.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-06-01"
    );
    assert_eq!(sent.headers["api-key"], TEST_AZURE_API_KEY);

    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("gpt", true))
        .await;
    assert_eq!(a.status, 200);
    let (text, finish, usage) = stream_parts(&a.sse_data());
    assert_eq!(text, "tok0 tok1 tok2 tok3 ");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(usage.unwrap()["completion_tokens"], 4);

    let a = http
        .post(
            gw.data_addr,
            "/v1/embeddings",
            &json!({ "model": "gpt", "input": "hi" }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(
        replica
            .last_request()
            .unwrap()
            .path
            .starts_with("/openai/deployments/gpt-4o-mini/embeddings?")
    );
}

#[tokio::test]
async fn a_wrong_key_is_one_clear_401_and_not_a_replica_failure() {
    let replica = fake("az", FakeProtocol::azure(), 4).await;
    let gw = start(
        CONFIG,
        &[("URL", replica.url()), ("KEY", "wrong-key".into())],
    )
    .await;
    let http = Http::default();
    // More refusals than it takes to eject a failing replica (5).
    for n in 1..=7 {
        let a = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("gpt", false))
            .await;
        assert_eq!(a.status, 401, "{}", String::from_utf8_lossy(&a.body));
        assert!(
            a.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Access denied")
        );
        assert_eq!(a.header("x-switchyard-attempts"), "1");
        assert_eq!(
            replica.auth_failures(),
            n,
            "passed through once, never retried"
        );
    }
    let admin = http.get(gw.admin_addr, "/admin/replicas").await.json();
    let row = &admin["replicas"][0];
    assert_eq!(row["consecutive_failures"], 0, "{row}");
    assert_eq!(row["ejections"], 0, "{row}");
}

#[tokio::test]
async fn a_bearer_token_file_is_reread_when_rotated() {
    let replica = fake("az", FakeProtocol::azure(), 2).await;
    let file = std::env::temp_dir().join(format!("switchyard-token-{}", replica.addr().port()));
    std::fs::write(&file, format!("{TEST_AZURE_API_KEY}\n")).unwrap();
    let yaml = CONFIG.replace(
        r#"auth: { header: api-key, value: "${KEY}" }"#,
        r#"auth: { bearer_file: "${FILE}" }"#,
    );
    let gw = start(
        &yaml,
        &[("URL", replica.url()), ("FILE", file.display().to_string())],
    )
    .await;
    let http = Http::default();
    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("gpt", false))
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        replica.last_request().unwrap().headers["authorization"],
        format!("Bearer {TEST_AZURE_API_KEY}").as_str()
    );
    // Rotated to a token the fake does not accept: seen within a second.
    std::fs::write(&file, "rotated-token").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("gpt", false))
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        replica.last_request().unwrap().headers["authorization"],
        "Bearer rotated-token"
    );
    // A missing file is the gateway's problem, named without any secret.
    std::fs::remove_file(&file).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("gpt", false))
        .await;
    assert_eq!(a.status, 502);
    let msg = a.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("credential file") && !msg.contains("rotated"),
        "{msg}"
    );
}
