//! `run_load` end to end against an in-process fake replica: both pacing
//! modes, every endpoint, streams judged, report and plot written.

use std::time::Duration;

use switchyard_fake_replica::{FakeReplica, GpuModel, ReplicaConfig};

use super::*;

fn spec(url: String, mode: Mode, workload: Vec<(f64, Workload)>) -> LoadSpec {
    LoadSpec {
        url,
        mode,
        duration: Duration::from_millis(800),
        max_requests: None,
        warmup: Duration::from_millis(200),
        workload,
        prompt: PromptSizes::Choice(vec![(3.0, 64), (1.0, 100 * 1024)]),
        shared_prefix: None,
        request_timeout: Duration::from_secs(5),
        progress: false,
        api_key: None,
    }
}

fn all_endpoints() -> Vec<(f64, Workload)> {
    parse_mix(
        "chat:stream:m=3,chat:plain:m=1,completions:stream:m=1,embeddings:m=1,kserve:m=1",
        false,
    )
    .expect("mix")
}

#[tokio::test]
async fn open_loop_against_fake_replica_is_complete_and_plots() {
    let cfg = ReplicaConfig {
        name: "r1".into(),
        tokens: 4,
        ..ReplicaConfig::default()
    };
    let replica = FakeReplica::start(cfg).await.expect("replica");
    let mode = Mode::Open {
        rate_per_sec: 100.0,
        max_in_flight: 64,
    };
    let run = run_load(spec(replica.url(), mode, all_endpoints()));
    let report = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("bounded")
        .expect("run");

    // 0.8 s at 100/s, give or take the edges of the window.
    assert!((70..=82).contains(&report.requests), "{}", report.summary());
    assert_eq!(report.ok, report.requests, "{:?}", report.verdicts);
    assert_eq!(report.verdict("complete"), report.requests);
    assert!(report.ttft_ms.is_some() && report.inter_token_ms.is_some());
    assert!(report.tokens.total >= 4 && report.tokens.per_stream_min == 4);
    assert_eq!(report.replicas.get("r1"), Some(&report.requests));
    assert!(!report.timeline.is_empty());
    assert!(report.timeline.iter().all(|s| s.t >= 0.0 && s.t < 2.0));
    assert!(report.max_send_lag_ms < 1000.0);

    let json = report.to_json();
    for key in ["requests", "ok", "rps", "seconds", "verdicts", "timeline"] {
        assert!(json.get(key).is_some(), "{key}");
    }
    for key in ["p50", "p90", "p99", "max"] {
        assert!(json["latency_ms"].get(key).is_some());
        assert!(json["ttfb_ms"].get(key).is_some());
    }
    assert!(report.summary().contains("complete="));

    let dir = std::env::temp_dir().join(format!("switchyard-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("run.svg");
    let events = [(Duration::from_millis(500), "swap".to_owned())];
    crate::plot::plot(&report, &events, &path).expect("plot");
    let svg = std::fs::read_to_string(&path).expect("svg");
    assert!(svg.contains("<svg") && svg.contains("swap") && svg.contains("p99"));
    let _ = std::fs::remove_dir_all(&dir);
    replica.shutdown().await;
}

#[tokio::test]
async fn closed_loop_stops_at_request_budget_and_reports_failures() {
    let cfg = ReplicaConfig {
        tokens: 2,
        ..ReplicaConfig::default()
    };
    let replica = FakeReplica::start(cfg).await.expect("replica");
    replica.fail_next(3);
    let mut s = spec(
        replica.url(),
        Mode::Closed { concurrency: 2 },
        all_endpoints(),
    );
    s.warmup = Duration::ZERO;
    s.duration = Duration::from_secs(5);
    s.max_requests = Some(40);
    let report = tokio::time::timeout(Duration::from_secs(20), run_load(s))
        .await
        .expect("bounded")
        .expect("run");
    assert_eq!(report.requests, 40, "{}", report.summary());
    assert_eq!(report.verdict("http_500"), 3, "{:?}", report.verdicts);
    assert_eq!(report.ok, 37);
    assert!(report.seconds < 5.0);
    replica.shutdown().await;
}

#[tokio::test]
async fn refused_connection_is_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let mut s = spec(url, Mode::Closed { concurrency: 1 }, all_endpoints());
    s.warmup = Duration::ZERO;
    s.max_requests = Some(3);
    let report = tokio::time::timeout(Duration::from_secs(10), run_load(s))
        .await
        .expect("bounded")
        .expect("run");
    assert_eq!(report.verdict("connect"), 3, "{:?}", report.verdicts);
}

#[tokio::test]
async fn held_request_times_out() {
    let replica = FakeReplica::start(ReplicaConfig::default())
        .await
        .expect("replica");
    replica.hold();
    let mut s = spec(
        replica.url(),
        Mode::Closed { concurrency: 1 },
        all_endpoints(),
    );
    s.warmup = Duration::ZERO;
    s.max_requests = Some(1);
    s.request_timeout = Duration::from_millis(200);
    let report = tokio::time::timeout(Duration::from_secs(10), run_load(s))
        .await
        .expect("bounded")
        .expect("run");
    assert_eq!(report.verdict("timeout"), 1, "{:?}", report.verdicts);
    assert!(report.latency_all_ms.p50 >= 200.0);
    replica.release();
    replica.shutdown().await;
}

#[tokio::test]
async fn shared_prefix_conversations_hit_a_gpu_replicas_cache() {
    let cfg = ReplicaConfig {
        tokens: 2,
        gpu: Some(GpuModel {
            prefill_per_byte: Duration::ZERO,
            cache_blocks: 4096,
            cache_block_bytes: 64,
            lora: None,
        }),
        ..ReplicaConfig::default()
    };
    let replica = FakeReplica::start(cfg).await.expect("replica");
    let mut s = spec(
        replica.url(),
        Mode::Closed { concurrency: 2 },
        all_endpoints(),
    );
    s.warmup = Duration::ZERO;
    s.max_requests = Some(24);
    s.shared_prefix = Some(SharedPrefix {
        model: "m".into(),
        system_prompts: 2,
        conversations: 4,
        turns: 3,
        system_bytes: 512,
        turn_bytes: 100,
    });
    let report = tokio::time::timeout(Duration::from_secs(20), run_load(s))
        .await
        .expect("bounded")
        .expect("run");
    assert_eq!(report.requests, 24, "{}", report.summary());
    assert_eq!(report.verdict("complete"), 24, "{:?}", report.verdicts);
    assert_eq!(report.ttft_ms.as_ref().map(|p| p.count), Some(24));
    assert!(report.to_json()["shared_prefix"]["turns"] == 3);
    let (queries, hits) = replica.prefix_cache().expect("gpu");
    // Every request after the first two (one per system prompt) finds at
    // least its system prompt's 8 blocks cached.
    assert!(hits >= 22 * 8, "{hits} of {queries}");
    replica.shutdown().await;
}
