//! `global_limits`: three gateway instances in this process share one
//! real redis-server. A tenant's requests per minute hold fleet-wide
//! (3× the limit offered, spread over the three, admits at most the
//! limit); Redis killed mid-run: serving goes on, the degraded mode shows
//! in `/metrics` and `/admin/costs`, a fail-open tenant gets this
//! instance's share and a fail-closed one a 503; Redis back: syncing
//! resumes.

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_fake_replica::{FakeReplica, ReplicaConfig};
use switchyard_gateway::Running;
use switchyard_tests::redis::RedisServer;
use switchyard_tests::{Http, chat, eventually, replicas};

fn lease_failures(gws: &[Running]) -> u64 {
    gws.iter()
        .map(|g| {
            g.proxy()
                .tenant_limits()
                .global()
                .map_or(0, |g| g.lease_failures())
        })
        .sum()
}

fn yaml(redis: Option<&str>, rpm: u32) -> String {
    let global = redis.map_or(String::new(), |url| {
        format!("global_limits: {{ redis_url: \"{url}\", sync_interval_ms: 50, slice: 0.1, key_prefix: t }}\n")
    });
    format!(
        r#"
clouds: {{ c: {{ provider: private }} }}
models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]
replicas:
  - {{ id: r, model: m, cloud: c, url: "${{R_URL}}", max_concurrency: 1000 }}
tenants:
  - name: open
    keys: [{{ id: o1, key: open-key }}]
    requests_per_minute: {rpm}
  - name: shut
    keys: [{{ id: s1, key: shut-key }}]
    requests_per_minute: {rpm}
    on_redis_unavailable: closed
{global}"#
    )
}

async fn three(yaml: &str, fleet: &std::collections::HashMap<String, FakeReplica>) -> Vec<Running> {
    let mut gws = Vec::new();
    for _ in 0..3 {
        gws.push(switchyard_tests::gateway(yaml, fleet).await);
    }
    gws
}

async fn ask(http: &Http, addr: SocketAddr, key: &str) -> switchyard_tests::Answer {
    http.call(
        "POST",
        addr,
        "/v1/chat/completions",
        &[("content-type", "application/json"), ("x-api-key", key)],
        chat("m", false).to_string(),
    )
    .await
}

/// Unix seconds now (the limits' windows are wall-clock minutes).
#[allow(clippy::disallowed_methods, reason = "the windows are UTC minutes")]
fn unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits until at least 10 s are left in the current minute, so a burst
/// of a few seconds falls in one window.
async fn align() {
    let into = unix() % 60;
    if into > 50 {
        tokio::time::sleep(Duration::from_secs(61 - into)).await;
    }
}

/// Offers `per_instance` requests of `key` to each gateway, 8 at a time
/// each; (admitted, refused with 429).
async fn offer(gws: &[Running], key: &'static str, per_instance: usize) -> (usize, usize) {
    let http = Http::default();
    let mut tasks = Vec::new();
    for gw in gws {
        for _ in 0..8 {
            let (http, addr) = (http.clone(), gw.data_addr);
            let n = per_instance / 8;
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut refused) = (0, 0);
                for _ in 0..n {
                    let a = ask(&http, addr, key).await;
                    match a.status.as_u16() {
                        200 => ok += 1,
                        429 => {
                            assert_eq!(a.json()["error"]["code"], "rate_limit_exceeded");
                            refused += 1;
                        }
                        s => panic!("unexpected {s}: {:?}", a.body),
                    }
                }
                (ok, refused)
            }));
        }
    }
    let mut total = (0, 0);
    for t in tasks {
        let (ok, refused) = t.await.unwrap();
        total = (total.0 + ok, total.1 + refused);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_admit_a_global_rpm_limit_once_not_three_times() {
    let redis = RedisServer::start().await;
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let limit = 120;
    let gws = three(&yaml(Some(&redis.url()), limit), &fleet).await;
    // The fleet is up: every instance has synced and sees the other two
    // (a first sync that times out on a loaded host would otherwise turn
    // the limits degraded, and fail-open admits each instance's share).
    eventually("every instance synced with all three", || {
        gws.iter().all(|g| {
            let g = g.proxy().tenant_limits().global().unwrap();
            !g.degraded() && g.live() == 3
        })
    })
    .await;
    align().await;
    let window = unix() / 60;
    let (admitted, refused) = offer(&gws, "open-key", limit as usize).await;
    let same_window = unix() / 60 == window;
    eprintln!(
        "global_limits: limit {limit}/min, offered {}, admitted {admitted}, refused {refused}, overshoot {:.1} %, lease failures {}",
        admitted + refused,
        (admitted as f64 / f64::from(limit) - 1.0) * 100.0,
        lease_failures(&gws)
    );
    assert_eq!(admitted + refused, 3 * limit as usize);
    assert!(same_window, "the burst crossed a minute; rerun");
    assert!(
        admitted as f64 <= f64::from(limit) * 1.02,
        "admitted {admitted} of a global {limit}"
    );
    // What can be stranded: one slice (a tenth) per instance.
    assert!(
        admitted as f64 >= f64::from(limit) * 0.7,
        "admitted only {admitted} of {limit}"
    );
    assert_eq!(
        fleet["r"].hits(),
        admitted as u64,
        "refused requests never left"
    );

    // The same offer without global_limits: each instance admits the
    // whole limit (the issue this fixes).
    let local = three(&yaml(None, limit), &fleet).await;
    let (admitted_local, _) = offer(&local, "open-key", limit as usize).await;
    eprintln!(
        "local limits: offered {}, admitted {admitted_local}",
        3 * limit
    );
    assert!(admitted_local >= 3 * limit as usize - 3, "{admitted_local}");
}

async fn scrape(http: &Http, gw: &Running) -> String {
    let a = http.call("GET", gw.admin_addr, "/metrics", &[], "").await;
    String::from_utf8_lossy(&a.body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_degrades_visibly_by_each_tenants_failure_mode_and_recovers() {
    let mut redis = RedisServer::start().await;
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let limit = 30;
    let gws = three(&yaml(Some(&redis.url()), limit), &fleet).await;
    let http = Http::default();
    let degraded = |want: bool| {
        gws.iter()
            .all(|g| g.proxy().tenant_limits().global().unwrap().degraded() == want)
    };
    eventually("every instance synced with all three", || {
        gws.iter()
            .all(|g| g.proxy().tenant_limits().global().unwrap().live() == 3)
    })
    .await;
    for key in ["open-key", "shut-key"] {
        assert_eq!(ask(&http, gws[0].data_addr, key).await.status, 200);
    }
    assert!(
        scrape(&http, &gws[0])
            .await
            .contains("switchyard_global_limits_degraded 0")
    );

    redis.kill();
    eventually("every instance sees Redis gone", || degraded(true)).await;
    let metrics = scrape(&http, &gws[1]).await;
    assert!(
        metrics.contains("switchyard_global_limits_degraded 1"),
        "{metrics}"
    );
    let costs = http
        .call("GET", gws[1].admin_addr, "/admin/costs", &[], "")
        .await;
    assert_eq!(
        costs.json()["global_limits"]["degraded"],
        true,
        "{:?}",
        costs.body
    );

    // Fail closed: 503 in the OpenAI shape, naming the cause.
    let shut = ask(&http, gws[0].data_addr, "shut-key").await;
    assert_eq!(shut.status, 503, "{:?}", shut.body);
    let e = &shut.json()["error"];
    assert_eq!(e["code"], "global_limits_unavailable", "{e}");
    assert_eq!(e["type"], "server_error", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("tenant `shut`"),
        "{e}"
    );
    // Fail open: served, this instance enforcing its share (30 / 3).
    let mut served = 0;
    for _ in 0..15 {
        match ask(&http, gws[2].data_addr, "open-key")
            .await
            .status
            .as_u16()
        {
            200 => served += 1,
            429 => {}
            s => panic!("unexpected {s}"),
        }
    }
    assert!(
        (10..=11).contains(&served),
        "served {served} of a share of 10"
    );

    redis.restart().await;
    eventually("every instance syncs again", || degraded(false)).await;
    let back = ask(&http, gws[0].data_addr, "shut-key").await;
    assert_eq!(back.status, 200, "{:?}", back.body);
    assert!(
        scrape(&http, &gws[0])
            .await
            .contains("switchyard_global_limits_degraded 0")
    );
}
