//! Retries that prefer the model the client asked for: the requested
//! group's last replica gets one more try before a fallback group answers,
//! a short `Retry-After` is waited out, and a context-length error moves to
//! a bigger group (`context_fallbacks`) instead of being resent.

use std::time::{Duration, Instant};

use switchyard_fake_replica::{Fault, FaultRule, ReplicaConfig};
use switchyard_tests::{Http, chat, replicas, within};

/// `m` has one replica (`primary`) and falls back to `spare` (`backup`);
/// `big` (`wide`) is `m`'s context fallback.
const GROUPS: &str = r#"
server: { limits: { request_timeout_ms: 5000 } }
clouds: { c: { provider: private } }
models:
  - { name: m, versions: [{ name: v1, weight: 100 }], fallbacks: [spare] }
  - { name: spare, versions: [{ name: v1, weight: 100 }] }
  - { name: big, versions: [{ name: v1, weight: 100 }] }
replicas:
  - { id: primary, model: m, cloud: c, url: "${PRIMARY_URL}" }
  - { id: backup, model: spare, cloud: c, url: "${BACKUP_URL}" }
  - { id: wide, model: big, cloud: c, url: "${WIDE_URL}" }
"#;

type Fleet = (
    switchyard_gateway::Running,
    std::collections::HashMap<String, switchyard_fake_replica::FakeReplica>,
);

/// The gateway over [`GROUPS`], with `edit` applied to the YAML.
async fn fleet(edit: impl Fn(&str) -> String) -> Fleet {
    let fleet = replicas(&[
        ("primary", ReplicaConfig::default()),
        ("backup", ReplicaConfig::default()),
        ("wide", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(&edit(GROUPS), &fleet).await;
    (gw, fleet)
}

#[tokio::test]
async fn a_transient_failure_on_the_last_replica_retries_the_group_before_the_fallback() {
    within(async {
        let (gw, fleet) = fleet(str::to_owned).await;
        fleet["primary"].set_fault(FaultRule::next(Fault::Error { status: 500 }, 1));
        let ans = Http::default()
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "primary");
        assert_eq!(ans.header("x-switchyard-attempts"), "2");
        assert_eq!(fleet["primary"].hits(), 2);
        assert_eq!(fleet["backup"].hits(), 0, "the fallback is not used");
    })
    .await;
}

#[tokio::test]
async fn a_group_failing_twice_is_answered_by_its_fallback() {
    within(async {
        let (gw, fleet) = fleet(str::to_owned).await;
        fleet["primary"].set_fault(FaultRule::next(Fault::Error { status: 502 }, 2));
        let ans = Http::default()
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "backup");
        assert_eq!(ans.header("x-switchyard-attempts"), "3");
        assert_eq!(
            fleet["primary"].hits(),
            2,
            "one retry on the group, not more"
        );
    })
    .await;
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out_on_the_same_replica() {
    within(async {
        let (gw, fleet) = fleet(str::to_owned).await;
        let limited = Fault::RateLimited {
            retry_after_secs: Some(1),
        };
        fleet["primary"].set_fault(FaultRule::next(limited, 1));
        let started = Instant::now();
        let ans = Http::default()
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "primary");
        assert_eq!(ans.header("x-switchyard-attempts"), "2");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "waited {:?}",
            started.elapsed()
        );
        assert_eq!(fleet["backup"].hits(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_retry_after_over_the_cap_moves_on_to_the_fallback() {
    within(async {
        let (gw, fleet) = fleet(|y| {
            y.replace(
                "fallbacks: [spare] }",
                "fallbacks: [spare], routing: { retry_after_max_ms: 500 } }",
            )
        })
        .await;
        let limited = Fault::RateLimited {
            retry_after_secs: Some(1),
        };
        fleet["primary"].set_fault(FaultRule::next(limited, 1));
        let started = Instant::now();
        let ans = Http::default()
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "backup");
        assert!(started.elapsed() < Duration::from_millis(900));
    })
    .await;
}

#[tokio::test]
async fn a_context_length_error_goes_once_to_the_context_fallback() {
    within(async {
        let (gw, fleet) = fleet(|y| {
            y.replace(
                "fallbacks: [spare] }",
                "fallbacks: [spare], context_fallbacks: [big] }",
            )
        })
        .await;
        fleet["primary"].set_fault(FaultRule::always(Fault::ContextLengthExceeded));
        let ans = Http::default()
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "wide");
        assert_eq!(ans.header("x-switchyard-attempts"), "2");
        assert_eq!(fleet["primary"].hits(), 1, "never resent to the same group");
        assert_eq!(fleet["backup"].hits(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_context_length_error_without_a_context_fallback_passes_through() {
    within(async {
        let (gw, fleet) = fleet(str::to_owned).await;
        fleet["primary"].set_fault(FaultRule::always(Fault::ContextLengthExceeded));
        let ans = Http::default()
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 400);
        assert_eq!(ans.json()["error"]["code"], "context_length_exceeded");
        assert_eq!(ans.header("x-switchyard-attempts"), "1");
        assert_eq!(fleet["primary"].hits(), 1);
        assert_eq!(fleet["backup"].hits(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_first_token_far_later_than_the_replicas_usual_fails_over_within_the_floor() {
    within(async {
        let (gw, fleet) = fleet(|y| {
            y.replace(
                "request_timeout_ms: 5000 }",
                "request_timeout_ms: 30000, first_token_floor_ms: 800 }",
            )
        })
        .await;
        let http = Http::default();
        // Teach the gateway the primary's usual time to first event.
        let warm = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
            .await;
        assert_eq!(warm.header("x-switchyard-replica"), "primary");
        let stuck = Fault::SlowFirstToken { delay_ms: 20_000 };
        fleet["primary"].set_fault(FaultRule::next(stuck, 1));
        let started = Instant::now();
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
            .await;
        let took = started.elapsed();
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "backup");
        assert_eq!(ans.header("x-switchyard-attempts"), "2");
        assert_eq!(ans.sse_data().last().map(String::as_str), Some("[DONE]"));
        assert!(
            (Duration::from_millis(750)..Duration::from_millis(3000)).contains(&took),
            "failed over after {took:?}, not at the 800 ms floor"
        );
    })
    .await;
}

#[tokio::test]
async fn the_last_chance_waits_the_fixed_first_token_timeout() {
    within(async {
        // No fallback: the primary is the only replica, so its slow start
        // is waited for instead of cut at the adaptive deadline.
        let (gw, fleet) = fleet(|y| {
            y.replace(", fallbacks: [spare]", "").replace(
                "request_timeout_ms: 5000 }",
                "request_timeout_ms: 5000, first_token_floor_ms: 300 }",
            )
        })
        .await;
        let http = Http::default();
        let warm = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
            .await;
        assert_eq!(warm.status, 200);
        let slow = Fault::SlowFirstToken { delay_ms: 1_200 };
        fleet["primary"].set_fault(FaultRule::next(slow, 1));
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        assert_eq!(ans.header("x-switchyard-attempts"), "1");
        assert_eq!(ans.sse_data().last().map(String::as_str), Some("[DONE]"));
    })
    .await;
}
