//! Hot swap: every reload trigger, refused configs, in-flight requests across
//! a swap, draining removed replicas, weights/promote/rollback, and the
//! automatic rollout controller.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchyard_fake_replica::{FakeReplica, Fault, FaultRule, ReplicaConfig};
use switchyard_gateway::Running;
use switchyard_tests::{Http, chat, eventually, next_chunk, within};

use crate::{CONFIG, fleet, streaming};

/// `CONFIG` with its `${X_URL}` filled in, as a file's text would be.
fn resolved(replicas: &HashMap<String, FakeReplica>) -> String {
    let mut text = CONFIG.to_owned();
    for (name, r) in replicas {
        text = text.replace(&format!("${{{}_URL}}", name.to_uppercase()), &r.url());
    }
    text
}

async fn config_json(http: &Http, gw: &Running) -> serde_json::Value {
    let ans = http.get(gw.admin_addr, "/admin/config").await;
    assert_eq!(ans.status, 200);
    ans.json()
}

async fn post_yaml(http: &Http, gw: &Running, yaml: &str) -> switchyard_tests::Answer {
    http.call(
        "POST",
        gw.admin_addr,
        "/admin/config",
        &[("content-type", "application/yaml")],
        yaml.to_owned(),
    )
    .await
}

/// The replica that served `model`, and the generation it was served under.
async fn served_by(http: &Http, gw: &Running, model: &str) -> (String, String) {
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat(model, false))
        .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    (
        ans.header("x-switchyard-replica").to_owned(),
        ans.header("x-switchyard-config-generation").to_owned(),
    )
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-reload-{tag}-{}-{}",
        std::process::id(),
        fastrand_u64()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fastrand_u64() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Writes like an editor that saves to a temporary file and renames it over
/// the original (the case a watch on the file's inode would miss).
fn save_by_rename(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn file_change_reloads_and_a_broken_file_keeps_the_old_config_serving() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let dir = temp_dir("file");
    let path = dir.join("switchyard.yaml");
    let text = resolved(&replicas);
    std::fs::write(&path, &text).unwrap();
    let _watch = gw.watch_file(&path).unwrap();

    // All of chat's traffic to v2 (replica c), saved the way editors save.
    save_by_rename(
        &path,
        &text.replace(
            "[{ name: v1, weight: 75 }, { name: v2, weight: 25 }]",
            "[{ name: v1, weight: 0 }, { name: v2, weight: 100 }]",
        ),
    );
    within(async {
        loop {
            if served_by(&http, &gw, "chat").await == ("c".to_owned(), "2".to_owned()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    for _ in 0..10 {
        assert_eq!(served_by(&http, &gw, "chat").await.0, "c");
    }

    // A broken save: refused as a whole, generation 2 keeps serving, and
    // the error names the field.
    save_by_rename(&path, &text.replace("weight: 75", "weight: 750"));
    within(async {
        loop {
            if !config_json(&http, &gw).await["last_error"].is_null() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let cfg = config_json(&http, &gw).await;
    assert_eq!(cfg["generation"], 2);
    let errors = cfg["last_error"]["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == "models[0].versions[0].weight"),
        "{errors:?}"
    );
    assert_eq!(cfg["last_error"]["trigger"], "file");
    assert_eq!(
        served_by(&http, &gw, "chat").await,
        ("c".into(), "2".into())
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn admin_config_applies_refuses_with_field_paths_and_ignores_identical_configs() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let text = resolved(&replicas);

    let bad = text.replace("max_concurrency: 4, auth", "max_concurrency: 0, auth");
    let ans = post_yaml(&http, &gw, &bad).await;
    assert_eq!(ans.status, 422);
    let body = ans.json();
    assert_eq!(body["generation"], 1);
    assert_eq!(body["errors"][0]["field"], "replicas[0].max_concurrency");
    assert_eq!(
        config_json(&http, &gw).await["last_error"]["errors"][0]["field"],
        "replicas[0].max_concurrency"
    );

    let not_yaml = post_yaml(&http, &gw, "models: [ {").await;
    assert_eq!(not_yaml.status, 422);
    assert!(not_yaml.body.starts_with(b"{"), "{:?}", not_yaml.body);

    let pinned = text.replace(
        "weight: 75 }, { name: v2, weight: 25",
        "weight: 0 }, { name: v2, weight: 100",
    );
    let ans = post_yaml(&http, &gw, &pinned).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    assert_eq!(ans.json()["generation"], 2);
    assert_eq!(ans.json()["changed"], true);
    assert_eq!(
        served_by(&http, &gw, "chat").await,
        ("c".into(), "2".into())
    );
    let cfg = config_json(&http, &gw).await;
    assert!(
        cfg["last_error"].is_null(),
        "a good config clears the error"
    );
    assert_eq!(cfg["history"].as_array().unwrap().len(), 1);

    // The same content again (reformatted): no new generation.
    let ans = post_yaml(&http, &gw, &format!("# re-saved\n{pinned}")).await;
    assert_eq!(ans.json()["changed"], false);
    assert_eq!(ans.json()["generation"], 2);
}

#[tokio::test]
async fn reload_without_a_file_is_refused_clearly() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let ans = Http::default()
        .call("POST", gw.admin_addr, "/admin/reload", &[], "")
        .await;
    assert_eq!(ans.status, 409);
    assert!(
        ans.json()["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no config file"),
        "{:?}",
        ans.body
    );
}

#[tokio::test]
async fn a_stream_in_flight_finishes_on_the_snapshot_it_started_with() {
    let (gw, replicas) = fleet(streaming(30, 20)).await;
    let http = Http::default();
    let resp = http.open_stream(gw.data_addr, &chat("chat@v2", true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-config-generation"], "1");
    let mut body = resp.into_body();
    assert!(next_chunk(&mut body).await.is_some());

    // Remove v2 and its replica while the stream runs.
    let without_c = resolved(&replicas)
        .replace(", { name: v2, weight: 25 }", "")
        .lines()
        .filter(|l| !l.contains("id: c,"))
        .collect::<Vec<_>>()
        .join("\n");
    let ans = post_yaml(&http, &gw, &without_c).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);

    let mut text = String::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events = switchyard_tests::sse_data(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    // New requests see the new config: v2 is gone.
    let gone = http
        .post(
            gw.data_addr,
            "/v1/chat/completions",
            &chat("chat@v2", false),
        )
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(served_by(&http, &gw, "chat").await.1, "2");
    eventually("the removed replica's slot is released", || {
        replicas["c"].in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn a_removed_replica_drains_then_ends_what_outlives_the_window_with_an_error() {
    let (gw, replicas) = fleet(streaming(500, 20)).await;
    let http = Http::default();
    let resp = http.open_stream(gw.data_addr, &chat("chat@v2", true)).await;
    let mut body = resp.into_body();
    assert!(next_chunk(&mut body).await.is_some());

    let without_c = resolved(&replicas)
        .replace(
            "shutdown_grace_ms: 10000",
            "shutdown_grace_ms: 10000\n    drain_timeout_ms: 300",
        )
        .replace(", { name: v2, weight: 25 }", "")
        .lines()
        .filter(|l| !l.contains("id: c,"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(post_yaml(&http, &gw, &without_c).await.status, 200);

    let started = std::time::Instant::now();
    let mut text = String::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the stream outlived its drain window by far: {:?}",
        started.elapsed()
    );
    let answer = switchyard_tests::Answer {
        status: http::StatusCode::OK,
        headers: http::HeaderMap::new(),
        body: text.into(),
    };
    answer.assert_ends_with_error("removed from the config");
    let events = http.get(gw.admin_addr, "/admin/events").await.json();
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "replica_draining" && e["subject"] == "c"),
        "{events}"
    );
}

#[tokio::test]
async fn live_stats_carry_over_by_id_and_a_changed_url_starts_fresh() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    for _ in 0..6 {
        served_by(&http, &gw, "chat@v1").await;
    }
    let requests = |rows: &serde_json::Value, id: &str| {
        rows["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["requests"].as_u64().unwrap())
    };
    let before = http.get(gw.admin_addr, "/admin/replicas").await.json();
    let (a, b) = (
        requests(&before, "a").unwrap(),
        requests(&before, "b").unwrap(),
    );
    assert_eq!(a + b, 6);

    // b moves to another address (replica k's, any live one will do).
    let text = resolved(&replicas);
    let moved = text.replace(&replicas["b"].url(), &replicas["k"].url());
    assert_eq!(post_yaml(&http, &gw, &moved).await.status, 200);
    let after = http.get(gw.admin_addr, "/admin/replicas").await.json();
    assert_eq!(after["generation"], 2);
    assert_eq!(
        requests(&after, "a"),
        Some(a),
        "same id and URL: stats kept"
    );
    assert_eq!(requests(&after, "b"), Some(0), "new URL: a new replica");
}

async fn weights_of(http: &Http, gw: &Running) -> HashMap<String, u64> {
    let r = http.get(gw.admin_addr, "/admin/rollouts").await.json();
    r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "chat")
        .unwrap()["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["weight"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn share_of_v2(http: &Http, gw: &Running, n: usize) -> f64 {
    let mut v2 = 0;
    for _ in 0..n {
        if served_by(http, gw, "chat").await.0 == "c" {
            v2 += 1;
        }
    }
    v2 as f64 / n as f64
}

#[tokio::test]
async fn weights_promote_and_rollback_move_traffic_each_as_a_new_generation() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let post = |path: &'static str, body: serde_json::Value| {
        let http = http.clone();
        let addr = gw.admin_addr;
        async move { http.post(addr, path, &body).await }
    };

    let ans = post(
        "/admin/models/chat/weights",
        serde_json::json!({ "v1": 50, "v2": 50 }),
    )
    .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    assert_eq!(ans.json()["generation"], 2);
    let share = share_of_v2(&http, &gw, 200).await;
    assert!((0.38..=0.62).contains(&share), "50/50 split gave {share}");

    let bad = post(
        "/admin/models/chat/weights",
        serde_json::json!({ "v9": 10 }),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.windows(2).any(|w| w == b"v9"), "{:?}", bad.body);
    let unknown = post("/admin/models/nope/weights", serde_json::json!({ "v1": 1 })).await;
    assert_eq!(unknown.status, 404);
    let zero = post(
        "/admin/models/chat/weights",
        serde_json::json!({ "v1": 0, "v2": 0 }),
    )
    .await;
    assert_eq!(zero.status, 422);

    let ans = post(
        "/admin/models/chat/promote",
        serde_json::json!({ "version": "v2" }),
    )
    .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    assert_eq!(share_of_v2(&http, &gw, 20).await, 1.0);
    assert_eq!(weights_of(&http, &gw).await["v1"], 0);

    // Rollback from a promoted version goes to the one before it.
    let ans = post("/admin/models/chat/rollback", serde_json::json!({})).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    assert_eq!(share_of_v2(&http, &gw, 20).await, 0.0);
    let rollouts = http.get(gw.admin_addr, "/admin/rollouts").await.json();
    let chat = rollouts["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "chat")
        .unwrap()
        .clone();
    assert_eq!(chat["stable"], "v1");
    let history = config_json(&http, &gw).await["history"].clone();
    let triggers: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["weights", "promote", "rollback"]);
}

/// `CONFIG` with an automatic rollout of v2 over v1, fast steps.
fn with_rollout(replicas: &HashMap<String, FakeReplica>) -> String {
    resolved(replicas).replace(
        "    routing: { queue_timeout_ms: 200 }\n",
        "    routing: { queue_timeout_ms: 200 }\n    rollout: { canary: v2, steps: [20, 50, 100], step_interval_ms: 400, min_requests: 8, max_error_rate_increase: 0.1,
                 max_p95_ratio: 50 }\n",
    )
}

/// Sends chat requests from 4 tasks until `stop` is set.
fn drive(gw: &Running, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|_| {
            let http = Http::default();
            let addr = gw.data_addr;
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let _ = http
                        .post(addr, "/v1/chat/completions", &chat("chat", false))
                        .await;
                }
            })
        })
        .collect()
}

async fn rollout_state(http: &Http, gw: &Running) -> serde_json::Value {
    let r = http.get(gw.admin_addr, "/admin/rollouts").await.json();
    r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "chat")
        .unwrap()["rollout"]
        .clone()
}

/// Declares the rollout, drives load until the rollout reaches `phase`,
/// stops the load and returns the rollout's state.
async fn roll_out_under_load(
    http: &Http,
    gw: &Running,
    replicas: &HashMap<String, FakeReplica>,
    phase: &str,
) -> serde_json::Value {
    assert_eq!(
        post_yaml(http, gw, &with_rollout(replicas)).await.status,
        200
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = drive(gw, Arc::clone(&stop));
    within(async {
        while rollout_state(http, gw).await["phase"] != phase {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    rollout_state(http, gw).await
}

#[tokio::test]
async fn an_automatic_rollout_advances_on_healthy_figures_and_promotes() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let state = roll_out_under_load(&http, &gw, &replicas, "completed").await;
    let actions: Vec<&str> = state["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.first(), Some(&"start"));
    assert!(actions.contains(&"advance"), "{actions:?}");
    assert_eq!(actions.last(), Some(&"complete"));
    let advance = state["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["action"] == "advance")
        .unwrap();
    assert!(
        advance["canary"]["requests"].as_u64().unwrap() >= 8,
        "{advance}"
    );
    assert_eq!(weights_of(&http, &gw).await["v2"], 100);
    assert_eq!(share_of_v2(&http, &gw, 10).await, 1.0);
}

#[tokio::test]
async fn an_automatic_rollout_rolls_back_when_the_canary_fails() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    // The canary's replica answers 500 to a third of its requests.
    replicas["c"].set_fault(FaultRule {
        fault: Fault::Error { status: 500 },
        count: None,
        rate: Some(0.35),
    });
    let state = roll_out_under_load(&http, &gw, &replicas, "rolled_back").await;
    let last = state["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "rollback");
    // Either guard rail may fire first: the error rate, or outlier
    // detection ejecting the failing canary replica (then it has too few
    // answers in the window to show a rate).
    let reason = state["reason"].as_str().unwrap();
    if reason.contains("error rate") {
        assert!(
            last["canary"]["error_rate"].as_f64().unwrap() > 0.1,
            "{last}"
        );
    } else {
        assert!(reason.contains("ejected"), "{state}");
    }
    let w = weights_of(&http, &gw).await;
    assert_eq!((w["v1"], w["v2"]), (100, 0));
    let metrics =
        String::from_utf8(http.get(gw.admin_addr, "/metrics").await.body.to_vec()).unwrap();
    for line in [
        r#"switchyard_rollout_phase{model="chat",canary="v2",phase="rolled_back"} 1"#,
        r#"switchyard_rollout_phase{model="chat",canary="v2",phase="progressing"} 0"#,
        r#"switchyard_version_weight{model="chat",version="v2"} 0"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    assert!(
        metrics.lines().any(|l| l
            .starts_with(r#"switchyard_tokens_total{model="chat",version="v1""#)
            && l.contains(r#"direction="output""#)
            && !l.ends_with(" 0")),
        "token usage is exported per replica"
    );
    replicas["c"].clear_fault();
    assert_eq!(share_of_v2(&http, &gw, 10).await, 0.0);
}

#[tokio::test]
async fn a_version_added_by_a_reload_gets_traffic_only_once_a_probe_passes() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    // Start with v1 only and active checks; c's health endpoint fails.
    let checked = resolved(&replicas).replace(
        "    routing: { queue_timeout_ms: 200 }\n",
        "    routing: { queue_timeout_ms: 200 }\n    health_check: { interval_ms: 50, timeout_ms: 50, rise: 2, fall: 2 }\n",
    );
    let v1_only = checked
        .replace(
            "weight: 75 }, { name: v2, weight: 25",
            "weight: 100 }, { name: v2, weight: 0",
        )
        .lines()
        .filter(|l| !l.contains("id: c,"))
        .collect::<Vec<_>>()
        .join("\n");
    let ans = post_yaml(&http, &gw, &v1_only).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    replicas["c"].fail_probes(true);

    // Add v2 on replica c at 50%: it waits for a healthy probe.
    let half = checked.replace(
        "weight: 75 }, { name: v2, weight: 25",
        "weight: 50 }, { name: v2, weight: 50",
    );
    assert_eq!(post_yaml(&http, &gw, &half).await.status, 200);
    for _ in 0..40 {
        let (replica, _) = served_by(&http, &gw, "chat").await;
        assert_ne!(replica, "c", "an unready replica took traffic");
    }
    assert_eq!(replicas["c"].hits(), 0);

    // Its probes pass: it joins (after `rise` probes, in slow start).
    replicas["c"].fail_probes(false);
    within(async {
        while served_by(&http, &gw, "chat").await.0 != "c" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Kubernetes mounts a ConfigMap as `file -> ..data/file` with `..data` a
/// symlink it swaps atomically: the watch on the directory sees the swap.
#[cfg(unix)]
#[tokio::test]
async fn a_configmap_style_symlink_swap_reloads() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let dir = temp_dir("configmap");
    let text = resolved(&replicas);
    for (version, body) in [
        ("..v1", text.clone()),
        (
            "..v2",
            text.replace(
                "[{ name: v1, weight: 75 }, { name: v2, weight: 25 }]",
                "[{ name: v1, weight: 0 }, { name: v2, weight: 100 }]",
            ),
        ),
    ] {
        std::fs::create_dir_all(dir.join(version)).unwrap();
        std::fs::write(dir.join(version).join("switchyard.yaml"), body).unwrap();
    }
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/switchyard.yaml", dir.join("switchyard.yaml")).unwrap();
    let path = dir.join("switchyard.yaml");
    let _watch = gw.watch_file(&path).unwrap();

    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    within(async {
        while served_by(&http, &gw, "chat").await != ("c".to_owned(), "2".to_owned()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_reload_changes_connection_limits_for_new_connections() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let header = "v".repeat(20_000);
    let big = [("x-big", header.as_str())];
    let status = |resp: http::Response<hyper::body::Incoming>| resp.status().as_u16();
    let before = http
        .send("GET", gw.data_addr, "/v1/models", &big, bytes::Bytes::new())
        .await;
    assert_eq!(
        status(before),
        200,
        "20 KB of headers fit the default limit"
    );

    let text = resolved(&replicas).replace(
        "    max_body_bytes: 65536\n",
        "    max_body_bytes: 65536\n    max_header_bytes: 8192\n",
    );
    let ans = post_yaml(&http, &gw, &text).await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    assert_eq!(
        config_json(&http, &gw).await["config"]["server"]["limits"]["max_header_bytes"],
        8192,
        "/admin/config shows the limit in force"
    );
    // A fresh client: a pooled connection would keep the limits it has.
    let after = Http::default()
        .send("GET", gw.data_addr, "/v1/models", &big, bytes::Bytes::new())
        .await;
    assert_eq!(status(after), 431, "a new connection gets the new limit");
}
