//! `protocol: sagemaker` against a fake SageMaker endpoint (an
//! OpenAI-compatible container) that verifies SigV4 for service `sagemaker`.

use switchyard_fake_replica::{FakeProtocol, TEST_AWS_SECRET_ACCESS_KEY};
use switchyard_tests::{Http, chat};

use super::{aws_vars as vars, fake, start, stream_parts};

const CONFIG: &str = r#"
clouds: { aws-east: { provider: aws, region: us-east-1 } }
models: [{ name: llama, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - id: sm
    model: llama
    cloud: aws-east
    url: "${URL}"
    protocol: sagemaker
    upstream_model: meta-llama-3-8b
    aws: { endpoint_name: llama-endpoint, access_key_id: "${AK}", secret_access_key: "${SK}" }
"#;

#[tokio::test]
async fn invoke_endpoint_and_its_response_stream_round_trip() {
    let replica = fake("sm", FakeProtocol::sagemaker(), 3).await;
    let gw = start(CONFIG, &vars(replica.url(), TEST_AWS_SECRET_ACCESS_KEY)).await;
    let http = Http::default();
    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("llama", false))
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        a.json()["choices"][0]["message"]["content"],
        "tok0 tok1 tok2"
    );
    assert_eq!(a.json()["model"], "meta-llama-3-8b");
    assert_eq!(
        replica.last_request().unwrap().path,
        "/endpoints/llama-endpoint/invocations"
    );

    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("llama", true))
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
    assert_eq!(text, "tok0 tok1 tok2 ");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(usage.unwrap()["completion_tokens"], 3);
    assert_eq!(
        replica.last_request().unwrap().path,
        "/endpoints/llama-endpoint/invocations-response-stream"
    );
    assert_eq!(replica.auth_failures(), 0);
}

#[tokio::test]
async fn a_wrong_secret_is_one_403_in_openai_shape() {
    let replica = fake("sm", FakeProtocol::sagemaker(), 3).await;
    let gw = start(CONFIG, &vars(replica.url(), "wrong")).await;
    let a = Http::default()
        .post(gw.data_addr, "/v1/chat/completions", &chat("llama", true))
        .await;
    assert_eq!(a.status, 403, "{}", String::from_utf8_lossy(&a.body));
    let e = a.json();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("sagemaker: The request signature"),
        "{e}"
    );
    assert_eq!(a.header("x-switchyard-attempts"), "1");
    assert_eq!(replica.auth_failures(), 1);
}
