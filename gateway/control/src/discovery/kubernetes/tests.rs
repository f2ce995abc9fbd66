//! A protocol test, not a cluster test: no Kubernetes API server runs on
//! the build machine, so a tiny HTTP server in the test answers the list
//! and watch requests kube-rs sends, with the bodies an API server sends.
//! It checks the loop's behaviour across a watch that ends: the re-list
//! lacks a pod, and its member is gone.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

fn slice_json(name: &str, ips: &[&str]) -> String {
    let endpoints: Vec<String> = ips
        .iter()
        .map(|ip| format!(r#"{{"addresses":["{ip}"],"conditions":{{"ready":true}}}}"#))
        .collect();
    format!(
        r#"{{"metadata":{{"name":"{name}","namespace":"llm","labels":{{"kubernetes.io/service-name":"vllm"}}}},
"addressType":"IPv4","ports":[{{"name":"http","port":8000,"protocol":"TCP"}}],
"endpoints":[{}]}}"#,
        endpoints.join(",")
    )
}

fn list(rv: &str, slices: &[String]) -> String {
    format!(
        r#"{{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSliceList","metadata":{{"resourceVersion":"{rv}"}},"items":[{}]}}"#,
        slices.join(",")
    )
}

/// One scripted answer.
struct Answer {
    watch: bool,
    body: String,
    /// Keep the connection open afterwards (a watch with nothing to say).
    hold: bool,
    /// Wait for the test's go-ahead before answering.
    gated: bool,
}

/// Answers requests in order. Each request it served is reported on
/// `seen` (its request line).
async fn serve(
    listener: TcpListener,
    script: Vec<Answer>,
    seen: mpsc::Sender<String>,
    mut gate: mpsc::Receiver<()>,
) {
    let mut held = Vec::new();
    for Answer {
        watch,
        body,
        hold,
        gated,
    } in script
    {
        let (mut sock, _) = listener.accept().await.unwrap();
        if gated {
            gate.recv().await.unwrap();
        }
        let mut buf = vec![0u8; 8192];
        let n = sock.read(&mut buf).await.unwrap();
        let line = String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        assert_eq!(
            line.contains("watch=true"),
            watch,
            "unexpected request {line}"
        );
        assert!(
            line.contains("labelSelector=kubernetes.io%2Fservice-name%3Dvllm"),
            "{line}"
        );
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(body.as_bytes()).await.unwrap();
        sock.flush().await.unwrap();
        seen.send(line).await.unwrap();
        if hold {
            held.push(sock);
        }
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
}

fn members(gw: &Controller) -> Vec<String> {
    let snap = gw.proxy().snapshot();
    let mut ids: Vec<String> = snap
        .table
        .entries()
        .iter()
        .map(|e| e.replica.id.clone())
        .collect();
    ids.sort();
    ids
}

async fn until(gw: &Controller, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while members(gw) != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "members {:?}, want {want:?}",
            members(gw)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_ends_is_followed_by_a_relist_that_drops_a_deleted_pod() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let dir = std::env::temp_dir().join(format!("switchyard-kube-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: t, cluster: {{server: \"http://{addr}\"}}}}]\n\
             users: [{{name: u, user: {{}}}}]\ncontexts: [{{name: c, context: {{cluster: t, user: u, namespace: llm}}}}]\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    let yaml = format!(
        r#"
clouds: {{ c: {{ provider: private }} }}
models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]
replicas:
  - {{ id: k, model: m, cloud: c, url: "http://vllm:8000/v1",
      discovery: {{ kubernetes: {{ namespace: llm, service: vllm, port: http, kubeconfig: "{}" }} }} }}
"#,
        kubeconfig.display()
    );
    let gw = Controller::for_tests(switchyard_config::load_str(&yaml, &|_| None).unwrap());
    let added = format!(
        r#"{{"type":"ADDED","object":{}}}"#,
        slice_json("vllm-b", &["10.0.0.3"]).replace('\n', "")
    ) + "\n";
    let answer = |watch, body, hold, gated| Answer {
        watch,
        body,
        hold,
        gated,
    };
    let script = vec![
        answer(
            false,
            list("10", &[slice_json("vllm-a", &["10.0.0.1", "10.0.0.2"])]),
            false,
            false,
        ),
        // The watch sends one event, then the connection ends.
        answer(true, added, false, true),
        // Meanwhile 10.0.0.2's pod was deleted and slice vllm-b went away.
        answer(
            false,
            list("20", &[slice_json("vllm-a", &["10.0.0.1"])]),
            false,
            true,
        ),
        answer(true, String::new(), true, false),
    ];
    let (tx, mut seen) = mpsc::channel(8);
    let (go, gate) = mpsc::channel(4);
    let mut server = JoinSet::new();
    server.spawn(serve(listener, script, tx, gate));
    let stop = CancellationToken::new();
    let spec = specs(&gw).remove("k").unwrap();
    let mut task = JoinSet::new();
    task.spawn(watch(Arc::clone(&gw), "k".into(), spec, stop.clone()));

    let bounded = Duration::from_secs(10);
    let first = tokio::time::timeout(bounded, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!first.contains("watch=true"), "{first}");
    until(&gw, &["k@10.0.0.1:8000", "k@10.0.0.2:8000"]).await;
    go.send(()).await.unwrap();
    let watch1 = tokio::time::timeout(bounded, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        watch1.contains("resourceVersion=10"),
        "watches from the list's version: {watch1}"
    );
    until(
        &gw,
        &["k@10.0.0.1:8000", "k@10.0.0.2:8000", "k@10.0.0.3:8000"],
    )
    .await;
    // The watch ended; the re-list is in flight: the last set serves.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(members(&gw).len(), 3);
    go.send(()).await.unwrap();
    let relist = tokio::time::timeout(bounded, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !relist.contains("watch=true"),
        "re-lists after the watch ended: {relist}"
    );
    let watch2 = tokio::time::timeout(bounded, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(watch2.contains("resourceVersion=20"), "{watch2}");
    until(&gw, &["k@10.0.0.1:8000"]).await;
    let (sources, _) = gw.discovery_view(tokio::time::Instant::now());
    assert_eq!(sources[0].source, "kubernetes:llm/vllm:http");
    assert_eq!(sources[0].last_error, None);

    stop.cancel();
    let ended = tokio::time::timeout(bounded, task.join_next())
        .await
        .unwrap();
    assert!(ended.unwrap().is_ok(), "the watch stops when cancelled");
    server.abort_all();
    let _ = std::fs::remove_dir_all(&dir);
}
