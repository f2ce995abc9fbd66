//! Mid-stream resume: a chat stream that breaks after it was committed is
//! finished by another replica of its version, so the client gets one
//! complete answer with exactly the text an unbroken stream gives, one
//! `[DONE]`, and a visible `: switchyard resumed on` comment; what cannot
//! be finished correctly ends with an honest error event.

use std::collections::HashMap;

use switchyard_fake_replica::{FakeReplica, Fault, FaultRule, ReplicaConfig};
use switchyard_tests::observe::upstream_attempts;
use switchyard_tests::{Answer, Http, chat, replicas, within};

/// `a` (cheaper: served first) and `b` serve `m@v1`.
const PAIR: &str = r#"
server:
  limits: { request_timeout_ms: 5000, first_token_timeout_ms: 1000, stream_idle_timeout_ms: 300 }
clouds: { c: { provider: private } }
models:
  - { name: m, versions: [{ name: v1, weight: 100 }], routing: { max_resumes: MAX } }
replicas:
  - { id: a, model: m, cloud: c, url: "${A_URL}", resume: RESUME_A,
      cost: { input_per_1k: 0.1, output_per_1k: 0.1 } }
  - { id: b, model: m, cloud: c, url: "${B_URL}", resume: RESUME_B,
      cost: { input_per_1k: 1.0, output_per_1k: 1.0 } }
"#;

pub(crate) struct Pair {
    pub(crate) gw: switchyard_gateway::Running,
    pub(crate) r: HashMap<String, FakeReplica>,
    pub(crate) http: Http,
}

pub(crate) async fn pair(resume_a: &str, resume_b: &str, max_resumes: u32) -> Pair {
    let cfg = ReplicaConfig {
        tokens: 16,
        ..ReplicaConfig::default()
    };
    let r = replicas(&[("a", cfg.clone()), ("b", cfg)]).await;
    let yaml = PAIR
        .replace("RESUME_A", resume_a)
        .replace("RESUME_B", resume_b)
        .replace("MAX", &max_resumes.to_string());
    let gw = switchyard_tests::gateway(&yaml, &r).await;
    Pair {
        gw,
        r,
        http: Http::default(),
    }
}

impl Pair {
    pub(crate) async fn ask(&self) -> Answer {
        let mut body = chat("m", true);
        body["max_tokens"] = 100.into();
        within(
            self.http
                .post(self.gw.data_addr, "/v1/chat/completions", &body),
        )
        .await
    }

    pub(crate) async fn metrics(&self) -> String {
        let ans = self.http.get(self.gw.admin_addr, "/metrics").await;
        String::from_utf8(ans.body.to_vec()).unwrap()
    }
}

/// The text of the canned answer of `n` tokens, as an unbroken stream gives it.
pub(crate) fn canned(n: u32) -> String {
    (0..n).map(|i| format!("tok{i} ")).collect()
}

/// Checks the stream is one complete answer: its text, one `[DONE]` at
/// the end, no error, one id and model throughout, one role delta, a usage
/// chunk counting every token the client received.
pub(crate) fn assert_one_complete_stream(ans: &Answer, text: &str, tokens: u64) {
    assert_eq!(ans.status, 200, "{ans:?}");
    let events = ans.sse_data();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    assert_eq!(events.iter().filter(|e| *e == "[DONE]").count(), 1);
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(
        chunks.iter().all(|c| c.get("error").is_none()),
        "{events:?}"
    );
    let got: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(got, text);
    assert!(
        chunks.iter().all(|c| c["id"] == chunks[0]["id"]),
        "{events:?}"
    );
    assert!(chunks.iter().all(|c| c["model"] == "m"), "{events:?}");
    let roles = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"].get("role").is_some())
        .count();
    assert_eq!(roles, 1, "{events:?}");
    let usage: Vec<_> = chunks.iter().filter(|c| c["usage"].is_object()).collect();
    assert_eq!(usage.len(), 1, "{events:?}");
    assert_eq!(usage[0]["usage"]["completion_tokens"], tokens);
    let u = &usage[0]["usage"];
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + tokens)
    );
}

pub(crate) fn resumed_on(ans: &Answer, replica: &str) -> bool {
    String::from_utf8_lossy(&ans.body).contains(&format!(": switchyard resumed on {replica}\n\n"))
}

#[tokio::test]
async fn a_stream_cut_mid_answer_is_finished_by_prefill_on_another_replica() {
    let p = pair("prefill", "prefill", 1).await;
    let unbroken = p.ask().await;
    assert_one_complete_stream(&unbroken, &canned(16), 16);
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 5 }, 1));
    let ans = p.ask().await;
    assert_one_complete_stream(&ans, &canned(16), 16);
    assert!(resumed_on(&ans, "b"), "{ans:?}");
    let sent = p.r["b"].last_request().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["continue_final_message"], true);
    assert_eq!(body["messages"][1]["content"], canned(5));
    assert_eq!(
        body["max_tokens"], 95,
        "the tokens already generated are spent"
    );
    // Both attempts are booked: `a` the 5 tokens it delivered (and 16
    // for the unbroken answer), `b` the 11 it generated.
    let mut m = p.metrics().await;
    for _ in 0..100 {
        if tokens(&m, "b", "output") > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        m = p.metrics().await;
    }
    assert_eq!(upstream_attempts(&m, "a", "resumed"), 1.0, "{m}");
    assert_eq!(
        upstream_attempts(&m, "b", "resume_ok"),
        1.0,
        "the continuation is an attempt too: {m}"
    );
    assert_eq!(upstream_attempts(&m, "b", "ok"), 0.0, "{m}");
    assert_eq!(tokens(&m, "a", "output"), 21.0, "{m}");
    assert_eq!(tokens(&m, "b", "output"), 11.0, "{m}");
    assert!(tokens(&m, "a", "input") > 0.0, "{m}");
}

/// `switchyard_tokens_total` booked for `replica` in `direction`.
pub(crate) fn tokens(metrics: &str, replica: &str, direction: &str) -> f64 {
    let (r, d) = (
        format!("replica=\"{replica}\""),
        format!("direction=\"{direction}\""),
    );
    metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_tokens_total{"))
        .filter(|l| l.contains(&r) && l.contains(&d))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_stream_stalled_mid_answer_is_finished_by_regenerating_and_skipping() {
    let p = pair("regenerate", "regenerate", 1).await;
    p.r["a"].set_fault(FaultRule::next(Fault::StallStream { after_tokens: 7 }, 1));
    let ans = p.ask().await;
    assert_one_complete_stream(&ans, &canned(16), 16);
    assert!(resumed_on(&ans, "b"), "{ans:?}");
    let sent = p.r["b"].last_request().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert!(body.get("continue_final_message").is_none(), "{body}");
    // The stalled replica's slot was given back, the new one's too.
    switchyard_tests::eventually("slots released", || {
        p.r["a"].in_flight() == 0 && p.r["b"].in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn a_replica_refusing_prefill_is_asked_to_regenerate() {
    let p = pair("prefill", "prefill", 1).await;
    p.r["b"].set_fault(FaultRule::always(Fault::RejectPrefill));
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 4 }, 1));
    let ans = p.ask().await;
    assert_one_complete_stream(&ans, &canned(16), 16);
    assert!(resumed_on(&ans, "b"), "{ans:?}");
    assert_eq!(p.r["b"].hits(), 2, "a refused prefill, then the regenerate");
}

#[tokio::test]
async fn a_different_regenerated_answer_ends_with_an_error_event_never_silently() {
    let p = pair("regenerate", "regenerate", 1).await;
    p.r["b"].set_fault(FaultRule::always(Fault::Nondeterministic));
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 4 }, 1));
    let ans = p.ask().await;
    assert_eq!(ans.status, 200);
    ans.assert_ends_with_error("differs from the text already sent");
    let text: String = ans
        .sse_data()
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        text,
        canned(4),
        "nothing of the other answer reached the client"
    );
    let m = p.metrics().await;
    assert_eq!(upstream_attempts(&m, "a", "broken"), 1.0, "{m}");
    switchyard_tests::eventually("slots released", || p.r["b"].in_flight() == 0).await;
}

#[tokio::test]
async fn past_the_resume_limit_the_stream_ends_with_an_error_event() {
    let p = pair("prefill", "prefill", 1).await;
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 3 }, 1));
    p.r["b"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 3 }, 1));
    let ans = p.ask().await;
    assert!(resumed_on(&ans, "b"), "{ans:?}");
    ans.assert_ends_with_error("resume limit");
    let text: String = ans
        .sse_data()
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, canned(6), "both replicas' tokens, in order, once");
}

#[tokio::test]
async fn a_stream_of_replicas_without_a_resume_strategy_ends_with_an_error_event() {
    let p = pair("none", "none", 1).await;
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 5 }, 1));
    let ans = p.ask().await;
    ans.assert_ends_with_error("without finishing");
    assert!(!resumed_on(&ans, "b"));
    assert_eq!(p.r["b"].hits(), 0);
}
