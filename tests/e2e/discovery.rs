//! Discovery: members registered with a lease or found in DNS join the
//! table with their template's settings, and leave it (draining, no
//! request failed) within a second of their lease expiring or their
//! address leaving DNS, while traffic runs.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchyard_fake_replica::{FakeReplica, ReplicaConfig};
use switchyard_tests::dns::FakeDns;
use switchyard_tests::{Http, chat, eventually, within};
use tokio::net::TcpListener;

/// Requests take 150 ms, so some are in flight at every removal.
fn slow() -> ReplicaConfig {
    ReplicaConfig {
        latency: Duration::from_millis(150),
        ..ReplicaConfig::default()
    }
}

/// Requests from `workers` clients until stopped: (status, replica) each.
struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(u16, String)>>>,
}

impl Traffic {
    fn start(gw: &switchyard_gateway::Running, workers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..workers)
            .map(|_| {
                let (stop, addr, http) = (Arc::clone(&stop), gw.data_addr, Http::default());
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let ans = http
                            .post(addr, "/v1/chat/completions", &chat("m", false))
                            .await;
                        let replica = ans.header("x-switchyard-replica").to_owned();
                        out.push((ans.status.as_u16(), replica));
                    }
                    out
                })
            })
            .collect();
        Self { stop, tasks }
    }

    async fn finish(self) -> Vec<(u16, String)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(within(t).await.unwrap());
        }
        all
    }
}

async fn table(http: &Http, gw: &switchyard_gateway::Running) -> Vec<serde_json::Value> {
    let ans = http.get(gw.admin_addr, "/admin/replicas").await;
    assert_eq!(ans.status, 200);
    ans.json()["replicas"].as_array().unwrap().clone()
}

async fn ids(http: &Http, gw: &switchyard_gateway::Running) -> Vec<String> {
    let mut ids: Vec<String> = table(http, gw)
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Polls the table every 10 ms until `id` is in it (`present`) or not;
/// returns when that was first seen.
async fn until_member(
    http: &Http,
    gw: &switchyard_gateway::Running,
    id: &str,
    present: bool,
) -> Instant {
    within(async {
        loop {
            if ids(http, gw).await.iter().any(|x| x == id) == present {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

async fn admin(
    http: &Http,
    gw: &switchyard_gateway::Running,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> switchyard_tests::Answer {
    http.call(
        method,
        gw.admin_addr,
        path,
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

const REGISTERED: &str = r#"
clouds: { c: { provider: private } }
models:
  - name: m
    versions: [{ name: v1, weight: 100 }]
    routing: { policy: round_robin, slow_start_ms: 0 }
replicas:
  - { id: fixed, model: m, cloud: c, url: "${FIXED_URL}" }
  - id: gpu
    model: m
    cloud: c
    url: "http://127.0.0.1"
    max_concurrency: 16
    discovery: { registration: true, max_ttl_ms: 60000 }
"#;

#[tokio::test]
async fn a_member_whose_lease_expires_leaves_rotation_within_a_second_with_no_failed_request() {
    let fleet =
        switchyard_tests::replicas(&[("fixed", slow()), ("r1", slow()), ("r2", slow())]).await;
    let gw = switchyard_tests::gateway(REGISTERED, &fleet).await;
    let http = Http::default();
    for (name, ttl) in [("r1", 60_000), ("r2", 500)] {
        let ans = admin(
            &http,
            &gw,
            "POST",
            "/admin/registrations",
            serde_json::json!({
                "template": "gpu", "url": fleet[name].url(), "ttl_ms": ttl,
            }),
        )
        .await;
        assert_eq!(ans.status, 201, "{:?}", ans.body);
    }
    let r2 = format!("gpu@{}", fleet["r2"].addr());
    let rows = table(&http, &gw).await;
    let row = rows.iter().find(|r| r["id"] == r2.as_str()).unwrap();
    assert_eq!(row["membership"], "registered");
    assert_eq!(row["template"], "gpu");
    assert_eq!(row["readiness"], "ready");
    assert_eq!(row["max_concurrency"], 16, "the template's settings");

    let traffic = Traffic::start(&gw, 6);
    // r2 heartbeats for a while, then stops (its process "died").
    let mut last_beat = Instant::now();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ans = admin(
            &http,
            &gw,
            "POST",
            &format!("/admin/registrations/{r2}/heartbeat"),
            serde_json::json!({}),
        )
        .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        last_beat = Instant::now();
    }
    let expiry = last_beat + Duration::from_millis(500);
    let gone = until_member(&http, &gw, &r2, false).await;
    let hits_at_removal = fleet["r2"].hits();
    eprintln!(
        "lease expiry -> out of rotation: {:?}",
        gone.saturating_duration_since(expiry)
    );
    assert!(
        gone.saturating_duration_since(expiry) < Duration::from_secs(1),
        "left {:?} after its lease expired",
        gone.saturating_duration_since(expiry)
    );
    assert!(
        gone >= expiry - Duration::from_millis(50),
        "left before its lease expired"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let results = traffic.finish().await;

    let failed: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    eprintln!(
        "lease test: {} requests, {} failed",
        results.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        results.len()
    );
    assert!(
        results.iter().any(|(_, r)| *r == r2),
        "r2 served before it left"
    );
    assert_eq!(
        fleet["r2"].hits(),
        hits_at_removal,
        "no request reached r2 after it left"
    );
    let ans = admin(
        &http,
        &gw,
        "POST",
        &format!("/admin/registrations/{r2}/heartbeat"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(ans.status, 404, "an expired member registers again");
    assert_eq!(ans.json()["errors"][0]["field"], "id");

    // Explicit deregistration: out at once.
    let r1 = format!("gpu@{}", fleet["r1"].addr());
    let ans = admin(
        &http,
        &gw,
        "DELETE",
        &format!("/admin/registrations/{r1}"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    assert_eq!(ids(&http, &gw).await, ["fixed"]);
}

#[tokio::test]
async fn registration_errors_name_the_field() {
    let fleet = switchyard_tests::replicas(&[("fixed", slow())]).await;
    let gw = switchyard_tests::gateway(REGISTERED, &fleet).await;
    let http = Http::default();
    for (body, status, field) in [
        (
            serde_json::json!({"template": "nope", "url": "http://10.0.0.1:80"}),
            404,
            "template",
        ),
        (
            serde_json::json!({"template": "fixed", "url": "http://10.0.0.1:80"}),
            404,
            "template",
        ),
        (
            serde_json::json!({"template": "gpu", "url": "http://gpu.example:80"}),
            400,
            "url",
        ),
        (
            serde_json::json!({"template": "gpu", "url": "http://169.254.169.254"}),
            400,
            "url",
        ),
        (
            serde_json::json!({"template": "gpu", "url": "http://10.0.0.1:80", "ttl_ms": 120000}),
            400,
            "ttl_ms",
        ),
    ] {
        let ans = admin(&http, &gw, "POST", "/admin/registrations", body.clone()).await;
        assert_eq!(ans.status, status, "{body}: {:?}", ans.body);
        assert_eq!(ans.json()["errors"][0]["field"], field, "{body}");
    }
    let ans = admin(
        &http,
        &gw,
        "POST",
        "/admin/registrations",
        serde_json::json!({"template": "gpu"}),
    )
    .await;
    assert_eq!(ans.status, 400, "a body without url");
    assert_eq!(ids(&http, &gw).await, ["fixed"]);
}

/// Two fake replicas on the same port of two loopback addresses, as a DNS
/// name's A records would give.
async fn same_port_pair(cfg: ReplicaConfig) -> (FakeReplica, FakeReplica) {
    let first = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = first.local_addr().unwrap().port();
    let second = TcpListener::bind(("127.0.0.3", port)).await.unwrap();
    (
        FakeReplica::start_on(
            first,
            ReplicaConfig {
                name: "d2".into(),
                ..cfg.clone()
            },
        )
        .await
        .unwrap(),
        FakeReplica::start_on(
            second,
            ReplicaConfig {
                name: "d3".into(),
                ..cfg
            },
        )
        .await
        .unwrap(),
    )
}

fn dns_config(dns: &FakeDns, discovery: &str) -> String {
    format!(
        r#"
clouds: {{ c: {{ provider: private }} }}
models:
  - name: m
    versions: [{{ name: v1, weight: 100 }}]
    routing: {{ policy: round_robin, slow_start_ms: 0 }}
replicas:
  - id: pool
    model: m
    cloud: c
    url: "http://pool.test"
    discovery: {{ {discovery}, nameserver: "{}", min_refresh_ms: 100, max_refresh_ms: 200 }}
"#,
        dns.addr()
    )
}

#[tokio::test]
async fn an_address_removed_from_dns_leaves_rotation_within_a_second_and_failures_keep_the_last_good_set()
 {
    let dns = FakeDns::start(0).await;
    let (d2, d3) = same_port_pair(slow()).await;
    let port = d2.addr().port();
    dns.set_a(
        "pool.test",
        &[Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)],
    );
    let yaml = dns_config(&dns, &format!("dns: pool.test, port: {port}"));
    let gw = switchyard_tests::gateway(&yaml, &Default::default()).await;
    let http = Http::default();
    let (m2, m3) = (
        format!("pool@127.0.0.2:{port}"),
        format!("pool@127.0.0.3:{port}"),
    );
    until_member(&http, &gw, &m3, true).await;
    assert_eq!(ids(&http, &gw).await, [m2.clone(), m3.clone()]);
    let row = table(&http, &gw)
        .await
        .into_iter()
        .find(|r| r["id"] == m2.as_str())
        .unwrap();
    assert_eq!(row["membership"], "dns");
    assert_eq!(row["url"], format!("http://127.0.0.2:{port}/"));

    let traffic = Traffic::start(&gw, 6);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let requests_before = row_requests(&http, &gw, &m2).await;
    dns.set_a("pool.test", &[Ipv4Addr::new(127, 0, 0, 2)]);
    let changed = Instant::now();
    let gone = until_member(&http, &gw, &m3, false).await;
    let hits_at_removal = d3.hits();
    eprintln!("DNS change -> out of rotation: {:?}", gone - changed);
    assert!(
        gone - changed < Duration::from_secs(1),
        "left {:?} after the change",
        gone - changed
    );
    assert!(
        row_requests(&http, &gw, &m2).await >= requests_before,
        "the kept member's stats carried over"
    );

    // The nameserver fails, then the name disappears: the last good set stays.
    dns.fail(true);
    let asked = dns.queries();
    eventually("the resolver asked again", || dns.queries() > asked + 2).await;
    dns.fail(false);
    dns.set_a("pool.test", &[]);
    let asked = dns.queries();
    eventually("the resolver asked again", || dns.queries() > asked + 2).await;
    assert_eq!(ids(&http, &gw).await, std::slice::from_ref(&m2));
    let results = traffic.finish().await;
    let failed: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    eprintln!(
        "DNS test: {} requests, {} failed",
        results.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        results.len()
    );
    assert!(
        results.iter().any(|(_, r)| *r == m3),
        "m3 served before it left"
    );
    assert_eq!(
        d3.hits(),
        hits_at_removal,
        "no request reached m3 after it left"
    );

    let metrics = http.get(gw.admin_addr, "/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains("switchyard_discovery_members{template=\"pool\",source=\"dns\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("switchyard_discovery_failing{template=\"pool\"} 1"),
        "{text}"
    );
    let disc = http.get(gw.admin_addr, "/admin/discovery").await.json();
    let source = &disc["sources"][0];
    assert_eq!(source["template"], "pool");
    assert_eq!(source["members"], 1);
    assert!(
        source["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("pool.test"),
        "{disc}"
    );
}

async fn row_requests(http: &Http, gw: &switchyard_gateway::Running, id: &str) -> u64 {
    let rows = table(http, gw).await;
    rows.iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["requests"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn srv_records_give_each_member_its_port() {
    let dns = FakeDns::start(1).await;
    let fleet = switchyard_tests::replicas(&[("s1", slow()), ("s2", slow())]).await;
    dns.set_a("node1.test", &[Ipv4Addr::LOCALHOST]);
    dns.set_a("node2.test", &[Ipv4Addr::LOCALHOST]);
    dns.set_srv(
        "_http._tcp.pool.test",
        &[
            ("node1.test", fleet["s1"].addr().port()),
            ("node2.test", fleet["s2"].addr().port()),
        ],
    );
    let gw = switchyard_tests::gateway(
        &dns_config(&dns, "dns: _http._tcp.pool.test, type: srv"),
        &fleet,
    )
    .await;
    let http = Http::default();
    let s2 = format!("pool@{}", fleet["s2"].addr());
    until_member(&http, &gw, &s2, true).await;
    assert_eq!(ids(&http, &gw).await.len(), 2);
    let mut served = Vec::new();
    for _ in 0..4 {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        served.push(ans.header("x-switchyard-replica").to_owned());
    }
    assert!(served.contains(&s2), "{served:?}");
    assert!(fleet["s1"].hits() > 0 && fleet["s2"].hits() > 0);
}
