//! The GPU-like model: a repeated prompt is charged only for its uncached
//! tail (read from the `x-fake-prefill-us` header, not timed), and
//! `/metrics` speaks vLLM's names.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchyard_fake_replica::{
    CACHED_BLOCKS_HEADER, FakeReplica, GpuModel, PREFILL_HEADER, ReplicaConfig, block_hashes,
    render_prompt,
};

async fn call(r: &FakeReplica, method: &str, path: &str, body: &str) -> (http::HeaderMap, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", r.url()))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let fut = async {
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.headers, String::from_utf8(body.to_vec()).unwrap())
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("timed out")
}

fn num(h: &http::HeaderMap, name: &str) -> u64 {
    h[name].to_str().unwrap().parse().unwrap()
}

fn gpu() -> ReplicaConfig {
    ReplicaConfig {
        tokens: 2,
        slots: Some(2),
        gpu: Some(GpuModel {
            prefill_per_byte: Duration::from_micros(10),
            cache_blocks: 64,
            cache_block_bytes: 16,
            lora: None,
        }),
        ..ReplicaConfig::default()
    }
}

/// `system\n` + 100 bytes + `\n` + `user\n` + 35 bytes + `\n` = 149 bytes:
/// 9 full blocks of 16 and a 5-byte tail.
fn chat(user: &str) -> String {
    let system = "s".repeat(100);
    format!(
        r#"{{"model":"m","stream":true,"messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"{user}"}}]}}"#
    )
}

#[tokio::test]
async fn a_repeated_prompt_pays_only_for_its_uncached_tail() {
    let r = FakeReplica::start(gpu()).await.unwrap();
    let user = "u".repeat(35);
    let text = render_prompt("/v1/chat/completions", chat(&user).as_bytes()).unwrap();
    assert_eq!(text.len(), 149);
    assert_eq!(
        block_hashes(&text, 16).len(),
        9,
        "what a router would predict"
    );
    let (h, body) = call(&r, "POST", "/v1/chat/completions", &chat(&user)).await;
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(num(&h, CACHED_BLOCKS_HEADER), 0);
    assert_eq!(num(&h, PREFILL_HEADER), 149 * 10, "cold: every byte");
    let (h, _) = call(&r, "POST", "/v1/chat/completions", &chat(&user)).await;
    assert_eq!(num(&h, CACHED_BLOCKS_HEADER), 9);
    assert_eq!(num(&h, PREFILL_HEADER), 5 * 10, "warm: the partial tail");
    // Same system prompt, another user turn: the shared head is reused.
    // `system\n` + 100 + `\n` + `user\n` = 113 bytes: 7 whole blocks in common.
    let (h, _) = call(&r, "POST", "/v1/chat/completions", &chat(&"v".repeat(35))).await;
    assert_eq!(num(&h, CACHED_BLOCKS_HEADER), 7);
    assert_eq!(num(&h, PREFILL_HEADER), (149 - 7 * 16) * 10);

    let (h, text) = call(&r, "GET", "/metrics", "").await;
    assert!(
        h[http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let sample = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(sample("vllm:prefix_cache_queries_total{"), 27.0);
    assert_eq!(sample("vllm:prefix_cache_hits_total{"), 16.0);
    assert_eq!(sample("vllm:kv_cache_usage_perc{"), 11.0 / 64.0);
    assert_eq!(sample("vllm:num_requests_waiting{"), 0.0);
    assert_eq!(sample("vllm:num_requests_running{"), 0.0);
    r.shutdown().await;
}

#[tokio::test]
async fn completions_are_cached_and_a_plain_replica_is_unchanged() {
    let r = FakeReplica::start(gpu()).await.unwrap();
    let body = format!(r#"{{"model":"m","prompt":"{}"}}"#, "p".repeat(40));
    let (h, _) = call(&r, "POST", "/v1/completions", &body).await;
    assert_eq!(num(&h, PREFILL_HEADER), 400);
    let (h, _) = call(&r, "POST", "/v1/completions", &body).await;
    assert_eq!(num(&h, CACHED_BLOCKS_HEADER), 2);
    assert_eq!(num(&h, PREFILL_HEADER), 80);
    r.shutdown().await;

    let plain = FakeReplica::start(ReplicaConfig::default()).await.unwrap();
    let (h, _) = call(&plain, "POST", "/v1/completions", &body).await;
    assert!(h.get(PREFILL_HEADER).is_none());
    let (_, text) = call(&plain, "GET", "/metrics", "").await;
    assert!(text.contains("vllm:gpu_cache_usage_perc{model_name=\"fake-model\"} 0\n"));
    plain.shutdown().await;
}

#[tokio::test]
async fn metrics_count_running_and_waiting_requests() {
    let mut cfg = gpu();
    cfg.slots = Some(1);
    let r = FakeReplica::start(cfg).await.unwrap();
    r.hold();
    let body = chat("x");
    let url = r.url();
    let send = |b: String| {
        let url = url.clone();
        tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let req = http::Request::post(format!("{url}/v1/chat/completions"))
                .body(Full::new(Bytes::from(b)))
                .unwrap();
            let resp = client.request(req).await.unwrap();
            resp.into_body().collect().await.unwrap();
        })
    };
    let a = send(body.clone());
    let b = send(body);
    // One holds the slot (at the gate), the other waits for it.
    tokio::time::timeout(Duration::from_secs(10), async {
        while r.queued() < 1 || r.in_flight() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("both requests arrive");
    let (_, text) = call(&r, "GET", "/metrics", "").await;
    assert!(
        text.contains("vllm:num_requests_waiting{model_name=\"fake-model\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("vllm:num_requests_running{model_name=\"fake-model\"} 1\n"),
        "{text}"
    );
    r.release();
    a.await.unwrap();
    b.await.unwrap();
    r.shutdown().await;
}
