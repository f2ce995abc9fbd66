//! The fleet's rollout leader against a real etcd (`/usr/bin/etcd` on free
//! loopback ports, `switchyard_tests::etcd`): election and takeover, a
//! rollout resumed across a leader change, a step held for a lagging
//! instance.

#![allow(
    clippy::disallowed_methods,
    reason = "the test owns its tasks by handle: it aborts a leader's as if the process died, and awaits the rest"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, WatchOptions};
use switchyard_config::Config;
use switchyard_fleet::leader;
use switchyard_fleet::rollouts::figures::Counters;
use switchyard_fleet::rollouts::publish;
use switchyard_fleet::rollouts::record::{Record, RunState, WeightsDoc};
use switchyard_fleet::rollouts::store::Keys;
use switchyard_tests::etcd::EtcdServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const P: &str = "/sy";
const TTL_S: i64 = 2;

const YAML: &str = r#"
clouds: { c: { provider: private } }
models:
  - name: chat
    versions: [{ name: v1, weight: 100 }, { name: v2, weight: 0 }]
    rollout: { canary: v2, steps: [10, 50, 100], step_interval_ms: 1000, min_requests: 4,
               max_error_rate_increase: 0.1, max_p95_ratio: 5 }
replicas:
  - { id: a, model: chat, version: v1, cloud: c, url: "http://127.0.0.1:9" }
  - { id: b, model: chat, version: v2, cloud: c, url: "http://127.0.0.1:9" }
"#;

fn config() -> Arc<Config> {
    Arc::new(switchyard_config::load_str(YAML, &|_| None).expect("the test config loads"))
}

/// An instance that applies every change at once: its status reports the
/// store's revision every 100 ms (what the etcd helper's status key does).
fn instance(mut client: Client, id: &str, stop: CancellationToken) -> JoinHandle<()> {
    let key = format!("{P}/instances/{id}");
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            if let Ok(r) = client.get("probe", None).await {
                let rev = r.header().unwrap().revision();
                let _ = client
                    .put(key.clone(), format!(r#"{{"revision":{rev}}}"#), None)
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Traffic on one instance: 5 attempts per side every 100 ms, all served,
/// published by the real publisher.
fn traffic(client: Client, id: &str, stop: CancellationToken) -> Vec<JoinHandle<()>> {
    let counters = Arc::new(Counters::default());
    counters.track(["chat"]);
    let feed = Arc::clone(&counters);
    let fed = stop.clone();
    let feeding = tokio::spawn(async move {
        while !fed.is_cancelled() {
            for _ in 0..5 {
                feed.observe("chat", "v1", true, Duration::from_millis(20));
                feed.observe("chat", "v2", true, Duration::from_millis(20));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let publishing = tokio::spawn(publish::run(
        client,
        P.into(),
        id.into(),
        counters,
        |_| {},
        stop,
    ));
    vec![feeding, publishing]
}

fn leader_task(client: Client, id: &str, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(leader::run(
        client,
        P.into(),
        id.into(),
        TTL_S,
        config,
        stop,
    ))
}

async fn record(client: &mut Client) -> Option<Record> {
    let r = client
        .get(format!("{P}/control/rollouts/chat"), None)
        .await
        .unwrap();
    r.kvs()
        .first()
        .map(|kv| serde_json::from_slice(kv.value()).unwrap())
}

/// Waits (≤ `within`) until the stored record satisfies `ok`.
async fn until(
    client: &mut Client,
    within: Duration,
    what: &str,
    ok: impl Fn(&Record) -> bool,
) -> Record {
    let deadline = Instant::now() + within;
    loop {
        if let Some(r) = record(client).await
            && ok(&r)
        {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            record(client).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every canary percentage ever written to the group's weights, in order.
async fn canary_history(client: &mut Client) -> Vec<u32> {
    let opts = WatchOptions::new().with_start_revision(1);
    let mut stream = client
        .watch(format!("{P}/control/weights/chat"), Some(opts))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Ok(Ok(Some(resp))) =
        tokio::time::timeout(Duration::from_millis(500), stream.message()).await
    {
        for e in resp.events() {
            let doc: WeightsDoc = serde_json::from_slice(e.kv().unwrap().value()).unwrap();
            seen.push(doc.weights.get("v2").copied().unwrap_or(0));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_the_lease_ttl_and_its_writes_are_fenced() {
    let etcd = EtcdServer::start().await;
    let keys = Keys::new(P);
    let stop = CancellationToken::new();
    let (mut a, mut b) = (etcd.client().await.unwrap(), etcd.client().await.unwrap());
    let first = leader::campaign(&mut a, &keys, "a", TTL_S, &stop)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        leader::current(&mut a, P).await.unwrap().as_deref(),
        Some("a")
    );
    let stale = first.fence().clone();
    let keys_b = keys.clone();
    let second = tokio::spawn(async move {
        let t = leader::campaign(&mut b, &keys_b, "b", TTL_S, &CancellationToken::new()).await;
        (t.unwrap().unwrap(), Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !second.is_finished(),
        "b must not lead while a's lease is kept alive"
    );
    // a "dies": its keepalive stops, its lease is not revoked.
    let died = Instant::now();
    drop(first);
    let (term_b, won) = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .unwrap()
        .unwrap();
    let gap = won - died;
    assert!(
        gap <= Duration::from_millis(TTL_S as u64 * 1000 + 1000),
        "takeover took {gap:?}"
    );
    assert_eq!(
        leader::current(&mut a, P).await.unwrap().as_deref(),
        Some("b")
    );
    // a's late write is refused.
    let rec = Record {
        spec: "{}".into(),
        state: RunState::Running,
        step: 0,
        percent: 10,
        started_ms: 0,
        step_at_ms: 0,
        applied_ms: None,
        base: Default::default(),
        history: vec![],
    };
    let late =
        switchyard_fleet::rollouts::store::save(&mut a, &keys, &stale, "chat", 0, &rec, None)
            .await
            .unwrap();
    assert_eq!(late, None, "a deposed leader's write is fenced off");
    let now = switchyard_fleet::rollouts::store::save(
        &mut a,
        &keys,
        term_b.fence(),
        "chat",
        0,
        &rec,
        None,
    )
    .await
    .unwrap();
    assert!(now.is_some(), "the leader's write goes through");
    // A resignation hands over at once.
    let mut c = etcd.client().await.unwrap();
    let keys_c = keys.clone();
    let third = tokio::spawn(async move {
        leader::campaign(&mut c, &keys_c, "c", TTL_S, &CancellationToken::new())
            .await
            .unwrap()
            .unwrap()
    });
    let resigned = Instant::now();
    term_b.resign(&mut a).await;
    let _term_c = tokio::time::timeout(Duration::from_secs(3), third)
        .await
        .unwrap()
        .unwrap();
    assert!(
        resigned.elapsed() < Duration::from_millis(1500),
        "resign hands over within a retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_resumes_after_the_leader_dies_without_repeating_or_skipping_a_step() {
    let etcd = EtcdServer::start().await;
    let stop = CancellationToken::new();
    let mut c = etcd.client().await.unwrap();
    let mut tasks = vec![instance(etcd.client().await.unwrap(), "i1", stop.clone())];
    tasks.extend(traffic(etcd.client().await.unwrap(), "i1", stop.clone()));
    let mut leaders = vec![
        (
            "a",
            leader_task(etcd.client().await.unwrap(), "a", stop.clone()),
        ),
        (
            "b",
            leader_task(etcd.client().await.unwrap(), "b", stop.clone()),
        ),
    ];
    until(
        &mut c,
        Duration::from_secs(15),
        "step 1 (50%) written",
        |r| r.step == 1,
    )
    .await;
    // The leader "dies" mid-rollout: its task is gone, its lease not revoked.
    let who = leader::current(&mut c, P).await.unwrap().unwrap();
    let i = leaders.iter().position(|(id, _)| *id == who).unwrap();
    let (_, dead) = leaders.remove(i);
    dead.abort();
    let done = until(&mut c, Duration::from_secs(20), "the promote", |r| {
        r.state == RunState::Promoted
    })
    .await;
    assert_ne!(
        leader::current(&mut c, P).await.unwrap().as_deref(),
        Some(who.as_str())
    );
    assert_eq!(
        canary_history(&mut c).await,
        vec![10, 50, 100],
        "each step written once, in order"
    );
    let actions: Vec<(usize, &str)> = done
        .history
        .iter()
        .map(|d| (d.step, d.action.as_str()))
        .filter(|(_, a)| *a != "extend")
        .collect();
    assert_eq!(
        actions,
        [
            (0, "start"),
            (0, "applied"),
            (0, "advance"),
            (1, "applied"),
            (2, "complete")
        ],
    );
    let window = &done.history.last().unwrap();
    assert!(
        window.canary.requests >= 4 && window.baseline.requests >= 4,
        "judged on published figures: {window:?}"
    );
    stop.cancel();
    for t in tasks.into_iter().chain(leaders.into_iter().map(|(_, t)| t)) {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_waits_until_every_live_instance_serves_its_weights() {
    let etcd = EtcdServer::start().await;
    let stop = CancellationToken::new();
    let mut c = etcd.client().await.unwrap();
    // i2 lags: its status stays at the revision before any weights.
    let rev = c
        .get("probe", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    c.put(
        format!("{P}/instances/i2"),
        format!(r#"{{"revision":{rev}}}"#),
        None,
    )
    .await
    .unwrap();
    let mut tasks = vec![instance(etcd.client().await.unwrap(), "i1", stop.clone())];
    tasks.extend(traffic(etcd.client().await.unwrap(), "i1", stop.clone()));
    tasks.push(leader_task(etcd.client().await.unwrap(), "a", stop.clone()));
    until(&mut c, Duration::from_secs(10), "step 0 written", |r| {
        r.step == 0
    })
    .await;
    // Two step intervals later the step still has not begun.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let held = record(&mut c).await.unwrap();
    assert_eq!(
        (held.step, held.applied_ms),
        (0, None),
        "a lagging instance holds the step: {held:?}"
    );
    assert_eq!(canary_history(&mut c).await, vec![10]);
    // i2 catches up: the window opens, and the rollout goes on.
    tasks.push(instance(etcd.client().await.unwrap(), "i2", stop.clone()));
    let applied = until(&mut c, Duration::from_secs(5), "step 0 applied", |r| {
        r.applied_ms.is_some()
    })
    .await;
    assert_eq!(applied.step, 0);
    until(&mut c, Duration::from_secs(10), "step 1", |r| r.step == 1).await;
    stop.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_publishes_the_serving_rollouts_figures_leads_and_leaves_nothing_behind() {
    use switchyard_proxy::{NoObserver, Proxy};
    let etcd = EtcdServer::start().await;
    let stop = CancellationToken::new();
    let mut c = etcd.client().await.unwrap();
    let shim = instance(etcd.client().await.unwrap(), "i1", stop.clone());
    let proxy = Arc::new(Proxy::new((*config()).clone(), Arc::new(NoObserver)).unwrap());
    let counters = Arc::new(Counters::default());
    let tasks = tokio_util::task::TaskTracker::new();
    let client = etcd.client().await.unwrap();
    switchyard_fleet::rollouts::start(
        &tasks,
        client,
        P,
        "i1",
        proxy,
        Arc::clone(&counters),
        config,
        stop.clone(),
    );
    until(&mut c, Duration::from_secs(10), "the record", |r| {
        r.step == 0
    })
    .await;
    assert_eq!(
        leader::current(&mut c, P).await.unwrap().as_deref(),
        Some("i1")
    );
    // The publisher made the counters follow the serving config's rollout.
    counters.observe("chat", "v2", false, Duration::from_millis(7));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = c.get(format!("{P}/figures/i1"), None).await.unwrap();
        let published = r
            .kvs()
            .first()
            .map(|kv| serde_json::from_slice::<serde_json::Value>(kv.value()).unwrap());
        if published
            .as_ref()
            .is_some_and(|v| v["chat"]["v2"]["errors"] == 1)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "figures not published: {published:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stopping resigns and revokes: no leader key, no figures left.
    stop.cancel();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .expect("both tasks stop");
    let _ = shim.await;
    assert_eq!(leader::current(&mut c, P).await.unwrap(), None);
    let left = c.get(format!("{P}/figures/i1"), None).await.unwrap();
    assert!(left.kvs().is_empty(), "the figures' lease was revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_is_left_alone_not_overwritten() {
    let etcd = EtcdServer::start().await;
    let stop = CancellationToken::new();
    let mut c = etcd.client().await.unwrap();
    let key = format!("{P}/control/rollouts/chat");
    c.put(key.clone(), "{ not json", None).await.unwrap();
    let shim = instance(etcd.client().await.unwrap(), "i1", stop.clone());
    let lead = leader_task(etcd.client().await.unwrap(), "a", stop.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while leader::current(&mut c, P).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "nobody leads");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = c.get(key, None).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"{ not json");
    let w = c
        .get(format!("{P}/control/weights/chat"), None)
        .await
        .unwrap();
    assert!(
        w.kvs().is_empty(),
        "no step is written over an unreadable record"
    );
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), lead).await;
    let _ = shim.await;
}
