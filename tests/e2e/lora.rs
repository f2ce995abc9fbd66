//! LoRA-aware routing end to end: three GPU-like fakes with LoRA slots, a
//! group listing its adapters; the gateway scrapes `vllm:lora_requests_info`
//! and sends a request naming an adapter where it is loaded, with the
//! adapter's name as the model. The second test counts adapter loads (the
//! fake charges each one to the request's time to first token) with LoRA
//! affinity on and off, same run: counts, not timings, so a loaded machine
//! does not change the figure's meaning.

use std::time::Duration;

use switchyard_fake_replica::{GpuModel, LoraModel, ReplicaConfig};
use switchyard_tests::{Http, chat, replicas};

use crate::health::until_row;

fn config(lora_weight: f64) -> String {
    format!(
        r#"
clouds: {{ c: {{ provider: private }} }}
models:
  - name: base
    adapters: [sql, chat, code]
    versions: [{{ name: v1, weight: 100 }}]
    routing: {{ policy: least_loaded, slow_start_ms: 0, engine_interval_ms: 20, engine_stale_ms: 2000, lora_weight: {lora_weight} }}
replicas:
  - {{ id: a, model: base, cloud: c, url: "${{A_URL}}", engine: vllm }}
  - {{ id: b, model: base, cloud: c, url: "${{B_URL}}", engine: vllm }}
  - {{ id: c, model: base, cloud: c, url: "${{C_URL}}", engine: vllm }}
"#
    )
}

/// A GPU fake serving `base` with `max_lora` slots, `preloaded` resident.
fn gpu(max_lora: usize, load: Duration, preloaded: &[&str]) -> ReplicaConfig {
    ReplicaConfig {
        model: "base".into(),
        gpu: Some(GpuModel {
            prefill_per_byte: Duration::ZERO,
            lora: Some(LoraModel {
                max_lora,
                load,
                preloaded: preloaded.iter().map(|s| (*s).to_owned()).collect(),
            }),
            ..GpuModel::default()
        }),
        ..ReplicaConfig::default()
    }
}

fn running(row: &serde_json::Value) -> Vec<String> {
    row["engine"]["lora"]["running"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn requests_for_an_adapter_go_to_the_replica_that_has_it_loaded() {
    let load = Duration::from_millis(50);
    let fleet = replicas(&[
        ("a", gpu(2, load, &[])),
        ("b", gpu(2, load, &["sql"])),
        ("c", gpu(2, load, &["chat"])),
    ])
    .await;
    let gw = switchyard_tests::gateway(&config(4.0), &fleet).await;
    let http = Http::default();
    until_row(&http, &gw, "b", "reported sql loaded", |r| {
        running(r) == ["sql"] && r["engine"]["lora"]["max_lora"] == 2
    })
    .await;
    until_row(&http, &gw, "c", "reported chat loaded", |r| {
        running(r) == ["chat"]
    })
    .await;

    for (adapter, holder) in [("sql", "b"), ("chat", "c")] {
        for _ in 0..10 {
            let ans = http
                .post(gw.data_addr, "/v1/chat/completions", &chat(adapter, false))
                .await;
            assert_eq!(ans.status, 200, "{:?}", ans.body);
            assert_eq!(ans.header("x-switchyard-replica"), holder, "{adapter}");
            assert_eq!(ans.header("x-fake-adapter-load-us"), "0", "resident");
        }
        let sent = fleet[holder].last_request().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(body["model"], adapter, "the adapter's name is forwarded");
    }
    // The base model itself is not steered: it may land anywhere, named as is.
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("base", false))
        .await;
    assert_eq!(ans.status, 200);
    assert!(ans.header("x-fake-adapter-load-us").is_empty());
    // Listed like vLLM lists them: under their base model.
    let models = http.get(gw.data_addr, "/v1/models").await.json();
    let sql = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "sql")
        .cloned();
    assert_eq!(sql.unwrap()["parent"], "base", "{models}");
    // An adapter no group lists is an unknown model, as before.
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("nope", false))
        .await;
    assert_eq!(ans.status, 404, "{:?}", ans.body);
}

/// Loads charged and their total, over `rounds` of the three adapters in
/// turn, each request after the last one's figures were scraped.
async fn run_workload(lora_weight: f64, rounds: usize) -> (usize, u64) {
    let load = Duration::from_millis(20);
    let fleet = replicas(&[
        ("a", gpu(1, load, &[])),
        ("b", gpu(1, load, &[])),
        ("c", gpu(1, load, &[])),
    ])
    .await;
    let gw = switchyard_tests::gateway(&config(lora_weight), &fleet).await;
    let http = Http::default();
    for id in ["a", "b", "c"] {
        until_row(&http, &gw, id, "scraped", |r| r["engine"]["stale"] == false).await;
    }
    let (mut loads, mut load_us) = (0, 0);
    for k in 0..rounds * 3 {
        let adapter = ["sql", "chat", "code"][k % 3];
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat(adapter, false))
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        let us: u64 = ans.header("x-fake-adapter-load-us").parse().unwrap();
        if us > 0 {
            loads += 1;
            load_us += us;
        }
        // Past a scrape (every 20 ms), so routing knows what was loaded.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    (loads, load_us)
}

#[tokio::test]
async fn lora_affinity_loads_each_adapter_once_where_spreading_reloads_it() {
    let rounds = 10;
    let (on, on_us) = run_workload(4.0, rounds).await;
    let (off, off_us) = run_workload(0.0, rounds).await;
    println!(
        "LORA requests={} affinity=on adapter_loads={on} load_ms={} affinity=off adapter_loads={off} load_ms={}",
        rounds * 3,
        on_us / 1000,
        off_us / 1000
    );
    assert!(on <= 6, "each adapter settles on one replica: {on} loads");
    assert!(
        off >= 2 * on.max(3),
        "without affinity adapters move: {off} vs {on}"
    );
}
