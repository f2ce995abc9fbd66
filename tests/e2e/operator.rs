//! Operator actions on one replica, through the admin API: cordon takes it
//! out of rotation, uncordon brings it back, drain waits for its in-flight
//! requests to finish.

use std::time::{Duration, Instant};

use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Http, chat, replicas};

const TWO: &str = r#"
clouds: { c: { provider: private } }
models:
  - name: m
    versions: [{ name: v1, weight: 100 }]
    routing: { policy: round_robin, slow_start_ms: 0 }
replicas:
  - { id: a, model: m, cloud: c, url: "${A_URL}" }
  - { id: b, model: m, cloud: c, url: "${B_URL}" }
"#;

async fn act(
    http: &Http,
    gw: &switchyard_gateway::Running,
    what: &str,
    body: &str,
) -> serde_json::Value {
    let ans = http
        .call(
            "POST",
            gw.admin_addr,
            &format!("/admin/replicas/{what}"),
            &[("content-type", "application/json")],
            body.to_owned(),
        )
        .await;
    assert!(
        ans.status == 200 || ans.status == 202,
        "{what}: {} {:?}",
        ans.status,
        ans.body
    );
    ans.json()
}

async fn served(http: &Http, gw: &switchyard_gateway::Running, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        out.push(ans.header("x-switchyard-replica").to_owned());
    }
    out
}

#[tokio::test]
async fn cordon_takes_a_replica_out_and_uncordon_brings_it_back() {
    let fleet = replicas(&[
        ("a", ReplicaConfig::default()),
        ("b", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(TWO, &fleet).await;
    let http = Http::default();
    assert_eq!(act(&http, &gw, "a/cordon", "{}").await["cordoned"], true);
    assert!(served(&http, &gw, 10).await.iter().all(|r| r == "b"));
    let row = crate::health::row(&http, &gw, "a").await;
    assert_eq!(row["cordoned"], true, "{row}");
    assert_eq!(act(&http, &gw, "a/uncordon", "{}").await["cordoned"], false);
    assert!(served(&http, &gw, 10).await.iter().any(|r| r == "a"));
    let missing = http
        .call(
            "POST",
            gw.admin_addr,
            "/admin/replicas/zzz/cordon",
            &[("content-type", "application/json")],
            "{}".to_owned(),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["errors"][0]["field"], "id");
    let events = http.get(gw.admin_addr, "/admin/events").await.json();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"replica_cordoned") && kinds.contains(&"replica_uncordoned"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn drain_waits_for_the_streams_in_flight() {
    let slow = ReplicaConfig {
        tokens: 12,
        inter_token: Duration::from_millis(40),
        ..ReplicaConfig::default()
    };
    let fleet = replicas(&[("a", slow.clone()), ("b", slow)]).await;
    let gw = switchyard_tests::gateway(TWO, &fleet).await;
    let http = Http::default();
    // One stream on each replica (round robin), about half a second long.
    let streams: Vec<_> = (0..2)
        .map(|_| {
            let (http, addr) = (Http::default(), gw.data_addr);
            tokio::spawn(async move {
                http.post(addr, "/v1/chat/completions", &chat("m", true))
                    .await
            })
        })
        .collect();
    crate::health::until_row(&http, &gw, "a", "serving a stream", |r| r["in_flight"] == 1).await;
    let started = Instant::now();
    let drained = act(&http, &gw, "a/drain", r#"{"timeout_ms": 5000}"#).await;
    assert_eq!(drained["drained"], true, "{drained}");
    assert_eq!(drained["in_flight"], 0);
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "it waited for the stream"
    );
    for s in streams {
        let ans = s.await.unwrap();
        assert_eq!(ans.status, 200);
        assert_eq!(
            ans.sse_data().last().map(String::as_str),
            Some("[DONE]"),
            "the stream in flight finished whole"
        );
    }
    assert!(
        served(&http, &gw, 6).await.iter().all(|r| r == "b"),
        "drained stays cordoned"
    );
}

#[tokio::test]
async fn a_cordon_survives_a_restart() {
    let fleet = replicas(&[
        ("a", ReplicaConfig::default()),
        ("b", ReplicaConfig::default()),
    ])
    .await;
    let dir = std::env::temp_dir().join(format!("sy-cordon-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gw.yaml");
    let text = TWO
        .replace("${A_URL}", &fleet["a"].url())
        .replace("${B_URL}", &fleet["b"].url());
    std::fs::write(&path, &text).unwrap();
    let http = Http::default();

    let first = switchyard_tests::gateway(&text, &fleet).await;
    first.set_source(&path);
    act(&http, &first, "a/cordon", "{}").await;
    let saved = std::fs::read_to_string(dir.join("gw.yaml.cordons.json")).unwrap();
    assert!(saved.contains("\"a\""), "{saved}");
    first.shutdown().await.unwrap();

    let second = switchyard_tests::gateway(&text, &fleet).await;
    second.set_source(&path);
    let row = crate::health::row(&http, &second, "a").await;
    assert_eq!(
        row["cordoned"], true,
        "cordoned again after the restart: {row}"
    );
    assert_eq!(row["readiness"], "cordoned");
    assert!(served(&http, &second, 6).await.iter().all(|r| r == "b"));
    act(&http, &second, "a/uncordon", "{}").await;
    let saved = std::fs::read_to_string(dir.join("gw.yaml.cordons.json")).unwrap();
    assert!(!saved.contains("\"a\""), "{saved}");
    second.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
