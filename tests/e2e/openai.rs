//! The OpenAI-compatible API through the gateway.

use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Http, chat};

use crate::{fleet, streaming};

#[tokio::test]
async fn chat_completion_is_proxied_with_routing_headers_and_model_rewrite() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let ans = http
        .post(
            gw.data_addr,
            "/v1/chat/completions",
            &chat("chat@v1", false),
        )
        .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    let replica = ans.header("x-switchyard-replica").to_owned();
    assert!(replica == "a" || replica == "b", "{replica}");
    assert_eq!(ans.header("x-switchyard-version"), "v1");
    assert_eq!(ans.header("x-switchyard-config-generation"), "1");
    assert!(!ans.header("x-request-id").is_empty());
    let json = ans.json();
    assert_eq!(json["object"], "chat.completion");
    // The replica was asked for its own model name, not the group name.
    assert_eq!(json["model"], "llama-8b");
    let seen = replicas[&replica].last_request().unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(sent["model"], "llama-8b");
    assert_eq!(
        sent["messages"][0]["content"], "Say hello",
        "the rest of the body is untouched"
    );
}

#[tokio::test]
async fn upstream_gets_its_own_credentials_never_the_clients() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let headers = [
        ("content-type", "application/json"),
        ("authorization", "Bearer client-key"),
    ];
    for _ in 0..20 {
        let body = chat("chat@v1", false).to_string();
        let ans = http
            .call("POST", gw.data_addr, "/v1/chat/completions", &headers, body)
            .await;
        assert_eq!(ans.status, 200);
    }
    let a = replicas["a"].last_request().unwrap();
    assert_eq!(a.headers.get("authorization").unwrap(), "Bearer secret-a");
    let b = replicas["b"].last_request().unwrap();
    assert!(
        b.headers.get("authorization").is_none(),
        "b has no configured auth"
    );
}

#[tokio::test]
async fn streaming_chat_arrives_intact_in_order_with_done_last() {
    let (gw, _replicas) = fleet(streaming(12, 2)).await;
    let http = Http::default();
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("chat", true))
        .await;
    assert_eq!(ans.status, 200);
    assert!(ans.header("content-type").starts_with("text/event-stream"));
    let events = ans.sse_data();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .collect();
    let expected: String = (0..12).map(|i| format!("tok{i} ")).collect();
    assert_eq!(
        text.trim_end(),
        expected.trim_end(),
        "tokens in order, none lost"
    );
    assert!(chunks.iter().any(|c| {
        c["choices"]
            .get(0)
            .is_some_and(|c| c["finish_reason"] == "stop")
    }));
    assert!(chunks.iter().any(|c| c["usage"]["completion_tokens"] == 12));
}

#[tokio::test]
async fn completions_embeddings_and_model_list() {
    let (gw, _replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let ans = http
        .post(
            gw.data_addr,
            "/v1/completions",
            &serde_json::json!({"model": "chat", "prompt": "Hi"}),
        )
        .await;
    assert_eq!(ans.status, 200);
    assert_eq!(ans.json()["object"], "text_completion");

    let ans = http
        .post(
            gw.data_addr,
            "/v1/embeddings",
            &serde_json::json!({"model": "chat", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(ans.status, 200);
    assert_eq!(ans.json()["data"].as_array().unwrap().len(), 2);

    let ans = http.get(gw.data_addr, "/v1/models").await;
    let ids: Vec<String> = ans.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec!["chat", "resnet"]);
}
