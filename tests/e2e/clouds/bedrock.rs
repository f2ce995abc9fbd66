//! `protocol: bedrock` against a fake Bedrock that recomputes SigV4
//! signatures with the known test keys.

use switchyard_fake_replica::{FakeProtocol, TEST_AWS_SECRET_ACCESS_KEY};
use switchyard_tests::{Http, chat};

use super::{aws_vars as vars, fake, start, stream_parts};

const CONFIG: &str = r#"
clouds: { aws-east: { provider: aws, region: us-east-1 } }
models: [{ name: claude, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - id: br
    model: claude
    cloud: aws-east
    url: "${URL}"
    protocol: bedrock
    upstream_model: "anthropic.claude-3-haiku-20240307-v1:0"
    aws: { access_key_id: "${AK}", secret_access_key: "${SK}" }
"#;

#[tokio::test]
async fn converse_round_trip_with_a_verified_signature() {
    let replica = fake("br", FakeProtocol::bedrock(), 5).await;
    let gw = start(CONFIG, &vars(replica.url(), TEST_AWS_SECRET_ACCESS_KEY)).await;
    let http = Http::default();
    let mut req = chat("claude", false);
    req["messages"] = serde_json::json!([
        { "role": "system", "content": "be brief" },
        { "role": "user", "content": "Say hello" }
    ]);
    req["max_tokens"] = 3.into();
    req["temperature"] = 0.2.into();
    req["stop"] = serde_json::json!(["END"]);
    let a = http.post(gw.data_addr, "/v1/chat/completions", &req).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let body = a.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "tok0 tok1 tok2");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 3);
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let sent = replica.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    let converse: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(converse["system"][0]["text"], "be brief");
    assert_eq!(converse["inferenceConfig"]["maxTokens"], 3);
    assert_eq!(converse["inferenceConfig"]["stopSequences"][0], "END");
    assert_eq!(replica.auth_failures(), 0);
}

#[tokio::test]
async fn converse_stream_becomes_sse_with_usage_and_done() {
    let replica = fake("br", FakeProtocol::bedrock(), 5).await;
    let gw = start(CONFIG, &vars(replica.url(), TEST_AWS_SECRET_ACCESS_KEY)).await;
    let a = Http::default()
        .post(gw.data_addr, "/v1/chat/completions", &chat("claude", true))
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.header("content-type").starts_with("text/event-stream"));
    let events = a.sse_data();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let (text, finish, usage) = stream_parts(&events);
    assert_eq!(text, "tok0 tok1 tok2 tok3 tok4 ");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(usage.unwrap()["completion_tokens"], 5);
    assert!(
        replica
            .last_request()
            .unwrap()
            .path
            .ends_with("/converse-stream")
    );
}

#[tokio::test]
async fn a_wrong_secret_is_awss_403_once_in_openai_shape() {
    let replica = fake("br", FakeProtocol::bedrock(), 5).await;
    let gw = start(CONFIG, &vars(replica.url(), "not-the-secret")).await;
    let http = Http::default();
    for n in 1..=6 {
        let a = http
            .post(
                gw.data_addr,
                "/v1/chat/completions",
                &chat("claude", n % 2 == 0),
            )
            .await;
        assert_eq!(a.status, 403, "{}", String::from_utf8_lossy(&a.body));
        let e = a.json();
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("signature we calculated does not match"),
            "{e}"
        );
        assert_eq!(e["error"]["code"], "InvalidSignatureException");
        assert_eq!(a.header("x-switchyard-attempts"), "1");
        assert_eq!(replica.auth_failures(), n);
    }
    let row = &http.get(gw.admin_addr, "/admin/replicas").await.json()["replicas"][0];
    assert_eq!(row["ejections"], 0, "{row}");
}

#[tokio::test]
async fn requests_bedrock_cannot_carry_are_400s() {
    let replica = fake("br", FakeProtocol::bedrock(), 5).await;
    let gw = start(CONFIG, &vars(replica.url(), TEST_AWS_SECRET_ACCESS_KEY)).await;
    let mut req = chat("claude", false);
    req["messages"] = serde_json::json!([{ "role": "tool", "content": "x", "tool_call_id": "1" }]);
    let a = Http::default()
        .post(gw.data_addr, "/v1/chat/completions", &req)
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages[0].role")
    );
    assert_eq!(replica.hits(), 0);
}

/// A group whose cheapest replica is Bedrock and whose dearer one speaks
/// OpenAI: what Bedrock cannot carry goes to the other replica.
const MIXED: &str = r#"
clouds:
  aws-east: { provider: aws, region: us-east-1 }
  dc: { provider: private }
models: [{ name: claude, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - id: br
    model: claude
    cloud: aws-east
    url: "${URL}"
    protocol: bedrock
    upstream_model: "anthropic.claude-3-haiku-20240307-v1:0"
    aws: { access_key_id: "${AK}", secret_access_key: "${SK}" }
    cost: { input_per_1k: 0.1, output_per_1k: 0.1 }
  - { id: vllm, model: claude, cloud: dc, url: "${VLLM}", cost: { input_per_1k: 1.0, output_per_1k: 1.0 } }
"#;

#[tokio::test]
async fn a_request_bedrock_cannot_carry_goes_to_a_replica_of_the_group_that_can() {
    let br = fake("br", FakeProtocol::bedrock(), 5).await;
    let vllm = fake("vllm", FakeProtocol::OpenAi, 5).await;
    let mut env = vars(br.url(), TEST_AWS_SECRET_ACCESS_KEY);
    env.push(("VLLM", vllm.url()));
    let gw = start(MIXED, &env).await;
    let http = Http::default();
    // Without tools the cheap Bedrock replica serves.
    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("claude", false))
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.header("x-switchyard-replica"), "br");
    // With tools, every time: the OpenAI replica, in one attempt, and the
    // refusal counts against nobody.
    let mut req = chat("claude", true);
    req["tools"] =
        serde_json::json!([{ "type": "function", "function": { "name": "f", "parameters": {} } }]);
    for _ in 0..3 {
        let a = http.post(gw.data_addr, "/v1/chat/completions", &req).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.header("x-switchyard-replica"), "vllm");
        assert_eq!(a.header("x-switchyard-attempts"), "1");
        assert_eq!(a.sse_data().last().map(String::as_str), Some("[DONE]"));
    }
    assert_eq!(br.hits(), 1);
    assert_eq!(vllm.hits(), 3);
    let replicas = http.get(gw.admin_addr, "/admin/replicas").await.json();
    let row = replicas["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "br")
        .unwrap()
        .clone();
    assert_eq!(row["ejections"], 0, "{row}");
}

#[tokio::test]
async fn the_refusal_stands_when_no_replica_of_the_group_can_carry_it() {
    let replica = fake("br", FakeProtocol::bedrock(), 5).await;
    let gw = start(CONFIG, &vars(replica.url(), TEST_AWS_SECRET_ACCESS_KEY)).await;
    let mut req = chat("claude", false);
    req["tools"] =
        serde_json::json!([{ "type": "function", "function": { "name": "f", "parameters": {} } }]);
    let a = Http::default()
        .post(gw.data_addr, "/v1/chat/completions", &req)
        .await;
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("`tools`"), "{message}");
    assert_eq!(replica.hits(), 0);
}
