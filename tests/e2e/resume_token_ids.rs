//! Token-exact mid-stream resume (`resume: token_ids`): the gateway asks
//! the replica for its token ids, and a stream that breaks goes on as a
//! `/v1/completions` request of the prompt's ids plus the ids generated so
//! far, on another replica of the version, rewritten into the client's
//! chat stream. The ids never reach a client that did not ask for them; a
//! target that cannot continue from ids falls back to `regenerate` or to
//! the error event, never to a silently short answer.

use serde_json::Value;
use switchyard_fake_replica::{ANSWER_BASE, Fault, FaultRule};
use switchyard_tests::observe::upstream_attempts;
use switchyard_tests::{Answer, chat, within};

use super::resume::{Pair, assert_one_complete_stream, canned, pair, resumed_on, tokens};

/// The ids of answer tokens `0..n`, as the fake replica numbers them.
fn answer_ids(n: u32) -> Vec<Value> {
    (0..n).map(|k| (ANSWER_BASE + k).into()).collect()
}

fn chunks(ans: &Answer) -> Vec<Value> {
    ans.sse_data()
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect()
}

fn usage(ans: &Answer) -> Value {
    chunks(ans)
        .into_iter()
        .find(|c| c["usage"].is_object())
        .map(|c| c["usage"].clone())
        .unwrap_or_default()
}

/// No event carries token ids (the client did not ask for them).
fn assert_no_ids(ans: &Answer) {
    let body = String::from_utf8_lossy(&ans.body);
    assert!(!body.contains("token_ids"), "ids leaked:\n{body}");
}

fn text(ans: &Answer) -> String {
    chunks(ans)
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// The last request `replica` received: its path and JSON body.
fn last(p: &Pair, replica: &str) -> (String, Value) {
    let sent = p.r[replica].last_request().unwrap();
    (sent.path, serde_json::from_slice(&sent.body).unwrap())
}

/// `switchyard_upstream_attempts_total` of `replica` with `result`, once
/// the body that counts it has ended.
async fn attempts(p: &Pair, replica: &str, result: &str, want: f64) -> f64 {
    let mut got = 0.0;
    for _ in 0..100 {
        got = upstream_attempts(&p.metrics().await, replica, result);
        if got == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    got
}

#[tokio::test]
async fn a_stream_cut_mid_answer_is_continued_from_its_token_ids_exactly() {
    let p = pair("token_ids", "token_ids", 1).await;
    let unbroken = p.ask().await;
    assert_one_complete_stream(&unbroken, &canned(16), 16);
    assert_no_ids(&unbroken);
    let (_, asked) = last(&p, "a");
    assert_eq!(
        asked["return_token_ids"], true,
        "the gateway asks for the ids"
    );
    let prompt = usage(&unbroken)["prompt_tokens"].as_u64().unwrap();

    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 5 }, 1));
    let ans = p.ask().await;
    assert_one_complete_stream(&ans, &canned(16), 16);
    assert!(resumed_on(&ans, "b"), "{ans:?}");
    assert_no_ids(&ans);
    assert_eq!(
        usage(&ans)["prompt_tokens"].as_u64(),
        Some(prompt),
        "the usage is the one of the answer the client got"
    );
    let (path, body) = last(&p, "b");
    assert_eq!(path, "/v1/completions");
    let ids = body["prompt"].as_array().unwrap();
    assert_eq!(ids.len() as u64, prompt + 5, "{body}");
    assert_eq!(ids[prompt as usize..], answer_ids(5)[..]);
    assert_eq!(body["max_tokens"], 95, "the 5 generated tokens are spent");
    assert!(body.get("messages").is_none(), "{body}");

    // Both attempts booked; the continuation counted as one.
    assert_eq!(attempts(&p, "b", "resume_ok", 1.0).await, 1.0);
    let m = p.metrics().await;
    assert_eq!(upstream_attempts(&m, "a", "resumed"), 1.0, "{m}");
    assert_eq!(tokens(&m, "a", "output"), 21.0, "{m}");
    assert_eq!(tokens(&m, "b", "output"), 11.0, "{m}");
}

#[tokio::test]
async fn a_client_asking_for_token_ids_gets_every_id_once_after_a_stall() {
    let p = pair("token_ids", "token_ids", 1).await;
    p.r["a"].set_fault(FaultRule::next(Fault::StallStream { after_tokens: 7 }, 1));
    let mut body = chat("m", true);
    body["max_tokens"] = 100.into();
    body["return_token_ids"] = true.into();
    let ans = within(p.http.post(p.gw.data_addr, "/v1/chat/completions", &body)).await;
    assert_one_complete_stream(&ans, &canned(16), 16);
    assert!(resumed_on(&ans, "b"), "{ans:?}");
    let chunks = chunks(&ans);
    let ids: Vec<Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["token_ids"].as_array())
        .flatten()
        .cloned()
        .collect();
    assert_eq!(
        ids,
        answer_ids(16),
        "the ids of the text received, in order"
    );
    let prompts: Vec<_> = chunks
        .iter()
        .filter_map(|c| c["prompt_token_ids"].as_array())
        .collect();
    assert_eq!(
        prompts.len(),
        1,
        "the prompt's ids, on the first chunk only"
    );
    assert_eq!(
        Some(prompts[0].len() as u64),
        usage(&ans)["prompt_tokens"].as_u64()
    );
}

#[tokio::test]
async fn a_target_without_token_ids_continues_with_its_own_strategy() {
    let p = pair("token_ids", "regenerate", 1).await;
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 5 }, 1));
    let ans = p.ask().await;
    assert_one_complete_stream(&ans, &canned(16), 16);
    assert!(resumed_on(&ans, "b"), "{ans:?}");
    assert_no_ids(&ans);
    let (path, body) = last(&p, "b");
    assert_eq!(path, "/v1/chat/completions");
    assert!(body.get("continue_final_message").is_none(), "{body}");
}

#[tokio::test]
async fn a_target_refusing_token_id_prompts_is_asked_to_regenerate() {
    let p = pair("token_ids", "token_ids", 1).await;
    p.r["b"].set_fault(FaultRule::always(Fault::RejectTokenIds));
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 4 }, 1));
    let ans = p.ask().await;
    assert_one_complete_stream(&ans, &canned(16), 16);
    assert!(resumed_on(&ans, "b"), "{ans:?}");
    assert_no_ids(&ans);
    assert_eq!(
        p.r["b"].hits(),
        2,
        "the refused completion, then the regenerate"
    );
    assert_eq!(last(&p, "b").0, "/v1/chat/completions");
    assert_eq!(attempts(&p, "b", "resume_ok", 1.0).await, 1.0);
    let m = p.metrics().await;
    assert_eq!(upstream_attempts(&m, "b", "resume_failed"), 1.0, "{m}");
}

#[tokio::test]
async fn with_no_replica_to_continue_on_the_stream_ends_with_an_error_event() {
    let p = pair("token_ids", "none", 1).await;
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 5 }, 1));
    let ans = p.ask().await;
    assert_eq!(ans.status, 200);
    ans.assert_ends_with_error("no replica to continue on");
    assert_eq!(text(&ans), canned(5), "what was sent, and no more");
    assert_no_ids(&ans);
    assert_eq!(p.r["b"].hits(), 0);
}

#[tokio::test]
async fn a_request_with_tools_is_continued_from_its_text_not_its_ids() {
    let p = pair("token_ids", "token_ids", 1).await;
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 3 }, 1));
    let mut body = chat("m", true);
    body["max_tokens"] = 100.into();
    body["tools"] = serde_json::json!([{"type": "function", "function": {"name": "f"}}]);
    let ans = within(p.http.post(p.gw.data_addr, "/v1/chat/completions", &body)).await;
    assert_one_complete_stream(&ans, &canned(16), 16);
    assert!(resumed_on(&ans, "b"), "{ans:?}");
    assert_eq!(
        last(&p, "b").0,
        "/v1/chat/completions",
        "a completion would not parse tool calls"
    );
}

#[tokio::test]
async fn a_continuation_that_breaks_too_is_continued_from_all_the_ids_so_far() {
    let p = pair("token_ids", "token_ids", 2).await;
    p.r["a"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 3 }, 1));
    p.r["b"].set_fault(FaultRule::next(Fault::CutStream { after_tokens: 4 }, 1));
    let ans = p.ask().await;
    assert_one_complete_stream(&ans, &canned(16), 16);
    assert!(resumed_on(&ans, "b") && resumed_on(&ans, "a"), "{ans:?}");
    assert_no_ids(&ans);
    let (path, body) = last(&p, "a");
    assert_eq!(path, "/v1/completions", "the second resume is exact too");
    let ids = body["prompt"].as_array().unwrap();
    assert_eq!(
        ids[ids.len() - 7..],
        answer_ids(7)[..],
        "a's 3 and b's 4, in order"
    );
    assert_eq!(body["max_tokens"], 93);
    assert_eq!(attempts(&p, "b", "resume_broken", 1.0).await, 1.0);
    assert_eq!(attempts(&p, "a", "resume_ok", 1.0).await, 1.0);
}
