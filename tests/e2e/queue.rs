//! Admission control: a full fleet queues requests (bounded, by priority)
//! instead of failing them, and sheds what does not fit.

use std::time::Instant;

use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Http, chat, eventually, replicas, within};

const ONE_SLOT: &str = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }], routing: { queue_size: 2, queue_timeout_ms: 5000 } }]
replicas: [{ id: r, model: m, cloud: c, url: "${R_URL}", max_concurrency: 1 }]
"#;

#[tokio::test]
async fn queued_requests_are_served_by_priority_and_overflow_is_shed() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(ONE_SLOT, &fleet).await;
    let r = &fleet["r"];
    r.hold();
    let http = Http::default();
    let send = |priority: &'static str| {
        let (http, addr) = (http.clone(), gw.data_addr);
        tokio::spawn(async move {
            let headers = [
                ("content-type", "application/json"),
                ("x-switchyard-priority", priority),
            ];
            let body = chat("m", false).to_string();
            let ans = http
                .call("POST", addr, "/v1/chat/completions", &headers, body)
                .await;
            (ans.status, Instant::now())
        })
    };
    let first = send("normal");
    eventually("the only slot is taken", || r.in_flight() == 1).await;
    let queue = gw.proxy().queues().get("m");
    let low = send("low");
    eventually("low is queued", || queue.len() == 1).await;
    let high = send("high");
    eventually("high is queued", || queue.len() == 2).await;

    // The queue holds 2: a third waiter is shed at once.
    let shed = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
        .await;
    assert_eq!(shed.status, 429);
    assert_eq!(shed.header("retry-after"), "1");

    r.release();
    let (s1, _) = within(first).await.unwrap();
    let (sh, t_high) = within(high).await.unwrap();
    let (sl, t_low) = within(low).await.unwrap();
    assert_eq!((s1.as_u16(), sh.as_u16(), sl.as_u16()), (200, 200, 200));
    assert!(t_high <= t_low, "high priority is served before low");
    assert_eq!(r.hits(), 3, "the shed request never reached the replica");
}

#[tokio::test]
async fn a_request_that_waits_too_long_is_shed_with_retry_after() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let yaml = ONE_SLOT.replace("queue_timeout_ms: 5000", "queue_timeout_ms: 150");
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    fleet["r"].hold();
    let http = Http::default();
    let held = {
        let (http, addr) = (http.clone(), gw.data_addr);
        tokio::spawn(async move {
            http.post(addr, "/v1/chat/completions", &chat("m", false))
                .await
        })
    };
    eventually("the slot is taken", || fleet["r"].in_flight() == 1).await;
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
        .await;
    assert_eq!(ans.status, 429);
    assert!(
        ans.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stayed at capacity")
    );
    fleet["r"].release();
    assert_eq!(within(held).await.unwrap().status, 200);
}
