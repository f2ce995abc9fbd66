//! Cost accounting: `GET /admin/costs` adds up exactly the usage the
//! replicas reported, priced per replica; answers without usage are
//! counted as `unknown_usage`, not guessed.

use std::collections::HashMap;

use switchyard_fake_replica::{
    FakeProtocol, Fault, FaultRule, TEST_AWS_ACCESS_KEY_ID, TEST_AWS_SECRET_ACCESS_KEY,
    TEST_AZURE_API_KEY,
};
use switchyard_tests::{Http, chat};

use super::{fake, start, stream_parts};

const CONFIG: &str = r#"
clouds:
  dc: { provider: private }
  azure-we: { provider: azure }
  aws-east: { provider: aws, region: us-east-1 }
models:
  - { name: local, versions: [{ name: v1, weight: 100 }] }
  - { name: gpt, versions: [{ name: v1, weight: 100 }] }
  - { name: claude, versions: [{ name: v2, weight: 100 }] }
replicas:
  - { id: vllm, model: local, cloud: dc, url: "${VLLM}", cost: { input_per_1k: 0.01, output_per_1k: 0.02 } }
  - { id: az, model: gpt, cloud: azure-we, url: "${AZ}", protocol: azure_openai,
      azure: { api_version: "2024-06-01" }, auth: { header: api-key, value: "${AZ_KEY}" },
      cost: { input_per_1k: 0.5, output_per_1k: 1.5 } }
  - { id: br, model: claude, cloud: aws-east, url: "${BR}", protocol: bedrock,
      upstream_model: "anthropic.claude-3-haiku-20240307-v1:0",
      aws: { access_key_id: "${AK}", secret_access_key: "${SK}" },
      cost: { input_per_1k: 0.25, output_per_1k: 1.25 } }
"#;

#[tokio::test]
async fn costs_add_up_the_reported_usage_per_replica() {
    let vllm = fake("vllm", FakeProtocol::OpenAi, 6).await;
    let az = fake("az", FakeProtocol::azure(), 4).await;
    let br = fake("br", FakeProtocol::bedrock(), 3).await;
    let gw = start(
        CONFIG,
        &[
            ("VLLM", vllm.url()),
            ("AZ", az.url()),
            ("BR", br.url()),
            ("AZ_KEY", TEST_AZURE_API_KEY.into()),
            ("AK", TEST_AWS_ACCESS_KEY_ID.into()),
            ("SK", TEST_AWS_SECRET_ACCESS_KEY.into()),
        ],
    )
    .await;
    let http = Http::default();
    // replica -> (prompt, completion) as the client saw them.
    let mut seen: HashMap<&str, (u64, u64)> = HashMap::new();
    for (replica, model) in [("vllm", "local"), ("az", "gpt"), ("br", "claude")] {
        for stream in [false, true, false] {
            let a = http
                .post(gw.data_addr, "/v1/chat/completions", &chat(model, stream))
                .await;
            assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
            let usage = if stream {
                stream_parts(&a.sse_data()).2.expect("usage chunk")
            } else {
                a.json()["usage"].clone()
            };
            let e = seen.entry(replica).or_default();
            e.0 += usage["prompt_tokens"].as_u64().unwrap();
            e.1 += usage["completion_tokens"].as_u64().unwrap();
        }
    }
    // A stream cut before its usage chunk: counted, not priced.
    vllm.set_fault(FaultRule::always(Fault::CutStream { after_tokens: 2 }));
    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("local", true))
        .await;
    assert_eq!(a.status, 200);
    vllm.clear_fault();

    let costs = http.get(gw.admin_addr, "/admin/costs").await.json();
    let prices = HashMap::from([
        ("vllm", (0.01, 0.02)),
        ("az", (0.5, 1.5)),
        ("br", (0.25, 1.25)),
    ]);
    let mut total = 0.0;
    for row in costs["by_replica"].as_array().unwrap() {
        let id = row["replica"].as_str().unwrap();
        let (prompt, completion) = seen[id];
        assert_eq!(row["input_tokens"], prompt, "{row}");
        assert_eq!(row["output_tokens"], completion, "{row}");
        let (pi, po) = prices[id];
        let spend = prompt as f64 / 1000.0 * pi + completion as f64 / 1000.0 * po;
        assert!(
            (row["spend"].as_f64().unwrap() - spend).abs() < 1e-6,
            "{row} vs {spend}"
        );
        total += spend;
        let unknown = if id == "vllm" { 1 } else { 0 };
        assert_eq!(row["unknown_usage"], unknown, "{row}");
        assert_eq!(row["requests"], 3 + unknown, "{row}");
    }
    assert_eq!(costs["by_replica"].as_array().unwrap().len(), 3);
    assert!(
        (costs["total"]["spend"].as_f64().unwrap() - total).abs() < 1e-6,
        "{costs}"
    );
    assert_eq!(costs["by_cloud"]["aws-east"]["output_tokens"], seen["br"].1);
    assert_eq!(
        costs["by_version"]["claude@v2"]["input_tokens"],
        seen["br"].0
    );
    assert_eq!(costs["by_model"]["gpt"]["requests"], 3);
}
