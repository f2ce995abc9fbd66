//! Replicas that break the protocol: a scripted raw-TCP upstream (`bad`)
//! next to a healthy fake replica (`good`) in one group. Before anything
//! was committed the client gets `good`'s complete answer; after, an error
//! event that a conforming SSE parser sees as an event of its own. Either
//! way the recorded outcome is not "ok".

use std::time::Duration;

use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::observe::{LogCapture, upstream_attempts};
use switchyard_tests::scripted::{Scripted, Step};
use switchyard_tests::{Answer, Http, chat, replicas};

/// `bad` (scripted) and `good` (fake) serve `m`, taken in turn.
const PAIR: &str = r#"
server:
  limits: { request_timeout_ms: 4000, first_token_timeout_ms: 400, stream_idle_timeout_ms: 400 }
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }], routing: { policy: round_robin } }]
replicas:
  - { id: bad, model: m, cloud: c, url: "BAD_URL" }
  - { id: good, model: m, cloud: c, url: "${GOOD_URL}" }
"#;

struct Setup {
    gw: switchyard_gateway::Running,
    bad: Scripted,
    _good: std::collections::HashMap<String, switchyard_fake_replica::FakeReplica>,
    http: Http,
}

async fn setup(script: impl Fn(&str) -> Vec<Step> + Send + Sync + 'static) -> Setup {
    let bad = Scripted::start(script).await;
    let good = replicas(&[("good", ReplicaConfig::default())]).await;
    let yaml = PAIR.replace("BAD_URL", &bad.url());
    let gw = switchyard_tests::gateway(&yaml, &good).await;
    Setup {
        gw,
        bad,
        _good: good,
        http: Http::default(),
    }
}

impl Setup {
    async fn ask(&self, stream: bool, headers: &[(&str, &str)]) -> Answer {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        self.http
            .call(
                "POST",
                self.gw.data_addr,
                "/v1/chat/completions",
                &h,
                chat("m", stream).to_string(),
            )
            .await
    }

    /// Asks until `bad` was tried (round robin: at most a few asks); every
    /// answer must be `good`'s, whole.
    async fn fails_over(&self, stream: bool) {
        for _ in 0..4 {
            let ans = self.ask(stream, &[]).await;
            assert_eq!(ans.status, 200, "{ans:?}");
            assert_eq!(ans.header("x-switchyard-replica"), "good", "{ans:?}");
            if stream {
                let events = strict_sse(&ans.body);
                assert_eq!(
                    events.last().map(String::as_str),
                    Some("[DONE]"),
                    "{events:?}"
                );
                assert!(
                    !events.iter().any(|e| e.contains("\"error\"")),
                    "{events:?}"
                );
            } else {
                assert!(ans.json()["choices"].is_array(), "{ans:?}");
            }
            if self.bad.hits() > 0 {
                let m = self.metrics().await;
                assert_eq!(upstream_attempts(&m, "bad", "ok"), 0.0, "{m}");
                assert!(upstream_attempts(&m, "bad", "retried") >= 1.0, "{m}");
                return;
            }
        }
        panic!("`bad` was never tried");
    }

    /// Asks (with `headers`) until `bad` answered; its answer.
    async fn answered_by_bad(&self, stream: bool, headers: &[(&str, &str)]) -> Answer {
        for _ in 0..4 {
            let ans = self.ask(stream, headers).await;
            if ans.header("x-switchyard-replica") == "bad" {
                return ans;
            }
        }
        panic!("`bad` never answered");
    }

    async fn metrics(&self) -> String {
        let ans = self.http.get(self.gw.admin_addr, "/metrics").await;
        String::from_utf8(ans.body.to_vec()).unwrap()
    }
}

/// The `data` of each event, as the WHATWG SSE parser dispatches them:
/// lines end in CRLF, LF or CR; an event ends at an empty line; an
/// unfinished event at the end of the stream is discarded.
fn strict_sse(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut out = Vec::new();
    let mut data: Option<String> = None;
    let mut lines: Vec<&str> = text.split('\n').collect();
    // The text after the last line end is an unfinished line.
    lines.pop();
    for line in lines {
        if line.is_empty() {
            if let Some(d) = data.take() {
                out.push(d);
            }
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    out
}

fn sse_head() -> String {
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n".to_owned()
}

const TOKEN: &str =
    "data: {\"choices\":[{\"delta\":{\"content\":\"tok\"},\"finish_reason\":null}]}\n\n";
const HALF: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"half";
const DONE: &str =
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

/// Two whole events, then the error event as a third: never glued on.
fn assert_two_tokens_then_error(ans: &Answer) {
    let events = strict_sse(&ans.body);
    assert_eq!(events.len(), 3, "{events:?}");
    for e in &events[..2] {
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["choices"][0]["delta"]["content"], "tok");
    }
    let err: serde_json::Value = serde_json::from_str(&events[2])
        .unwrap_or_else(|e| panic!("the error event is not an event of its own ({e}): {events:?}"));
    assert_eq!(err["error"]["code"], "upstream_stream_error", "{events:?}");
    assert!(
        !String::from_utf8_lossy(&ans.body).contains("half"),
        "{ans:?}"
    );
}

#[tokio::test]
async fn replicas_are_asked_for_identity_and_their_answer_is_not_appended_to() {
    // Gzips when allowed to: then a plain-text error event after it would
    // corrupt the answer.
    let s = setup(|head| {
        let gzip = head
            .lines()
            .any(|l| l.starts_with("accept-encoding:") && l.contains("gzip"));
        if gzip {
            let mut resp = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\n\r\n".to_vec();
            resp.extend_from_slice(b"\x1f\x8b\x08\x00");
            vec![Step::Write(resp)]
        } else {
            vec![Step::write(sse_head() + TOKEN + DONE)]
        }
    })
    .await;
    let ans = s
        .answered_by_bad(true, &[("accept-encoding", "gzip")])
        .await;
    assert!(ans.header("content-encoding").is_empty(), "{ans:?}");
    let events = strict_sse(&ans.body);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    assert!(
        s.bad
            .heads()
            .iter()
            .all(|h| h.contains("accept-encoding: identity\r\n")),
        "{:?}",
        s.bad.heads()
    );
}

#[tokio::test]
async fn an_encoded_answer_from_a_replica_that_ignores_identity_is_never_appended_to() {
    let gzip: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03";
    let mut resp = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\ncontent-length: 10\r\n\r\n".to_vec();
    resp.extend_from_slice(gzip);
    let s = setup(move |_| vec![Step::Write(resp.clone())]).await;
    let ans = s.answered_by_bad(true, &[]).await;
    assert_eq!(ans.header("content-encoding"), "gzip");
    assert_eq!(&ans.body[..], gzip, "nothing appended to an encoded body");
}

#[tokio::test]
async fn a_stream_cut_mid_event_ends_with_a_separate_error_event_and_is_recorded_broken() {
    let logs = LogCapture::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = ::tracing::subscriber::set_default(subscriber);

    let s = setup(|_| vec![Step::write(sse_head() + TOKEN + TOKEN + HALF)]).await;
    let ans = s.answered_by_bad(true, &[]).await;
    assert_eq!(ans.status, 200);
    assert_two_tokens_then_error(&ans);
    let m = s.metrics().await;
    assert_eq!(upstream_attempts(&m, "bad", "broken"), 1.0, "{m}");
    assert_eq!(upstream_attempts(&m, "bad", "ok"), 0.0, "{m}");
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let line = logs
        .lines()
        .find(|l| l.contains("switchyard::access") && l.contains("replica=\"bad\""))
        .unwrap_or_else(|| panic!("no access log line for bad:\n{logs}"));
    assert!(line.contains("outcome=\"error_event\""), "{line}");
    assert!(line.contains("error=\"stream_error_event\""), "{line}");
}

/// A chunked answer whose connection breaks after its finish event (no
/// terminating chunk): the client has the whole answer, and no error event
/// is glued after it (the replica SIGKILLed between its last events).
#[tokio::test]
async fn a_connection_broken_after_the_finish_event_ends_the_answer_without_an_error() {
    let chunk = |s: &str| format!("{:x}\r\n{s}\r\n", s.len());
    let finish = "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                transfer-encoding: chunked\r\n\r\n";
    let answer = format!("{head}{}{}", chunk(TOKEN), chunk(finish));
    let s = setup(move |_| vec![Step::write(&answer)]).await;
    let ans = s.answered_by_bad(true, &[]).await;
    assert_eq!(ans.status, 200);
    let events = strict_sse(&ans.body);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events[1].contains("\"finish_reason\":\"stop\""),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("\"error\"")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_stream_stalled_mid_event_ends_with_a_separate_error_event() {
    let s = setup(|_| vec![Step::write(sse_head() + TOKEN + TOKEN + HALF), Step::Hang]).await;
    let ans = s.answered_by_bad(true, &[]).await;
    assert_two_tokens_then_error(&ans);
    assert_eq!(upstream_attempts(&s.metrics().await, "bad", "broken"), 1.0);
}

#[tokio::test]
async fn a_comment_then_silence_is_not_committed_and_fails_over() {
    let s = setup(|_| vec![Step::write(sse_head() + ": ping\n\n"), Step::Hang]).await;
    s.fails_over(true).await;
}

#[tokio::test]
async fn a_comment_drip_does_not_keep_an_attempt_alive() {
    let s = setup(|_| {
        vec![
            Step::write(sse_head()),
            Step::Drip {
                bytes: b":\n\n".to_vec(),
                every: Duration::from_millis(50),
                times: 200,
            },
        ]
    })
    .await;
    s.fails_over(true).await;
}

#[tokio::test]
async fn a_comment_drip_does_not_keep_a_committed_stream_alive() {
    let s = setup(|_| {
        vec![
            Step::write(sse_head() + TOKEN + TOKEN),
            Step::Drip {
                bytes: b": ping\n\n".to_vec(),
                every: Duration::from_millis(50),
                times: 200,
            },
        ]
    })
    .await;
    let ans = s.answered_by_bad(true, &[]).await;
    let events = strict_sse(&ans.body);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[2].contains("no data event for 400 ms"), "{events:?}");
    assert_eq!(upstream_attempts(&s.metrics().await, "bad", "broken"), 1.0);
}

#[tokio::test]
async fn conflicting_framing_fails_over() {
    let s = setup(|_| {
        vec![Step::write(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n{\"id\"",
        )]
    })
    .await;
    s.fails_over(false).await;
}

#[tokio::test]
async fn an_invalid_status_fails_over() {
    let s = setup(|_| {
        vec![Step::write(
            "HTTP/1.1 999 Nope\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
        )]
    })
    .await;
    s.fails_over(false).await;
}

#[tokio::test]
async fn an_unsolicited_upgrade_fails_over() {
    let s = setup(|_| {
        vec![
            Step::write("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"),
            Step::Hang,
        ]
    })
    .await;
    s.fails_over(true).await;
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_fails_over() {
    let s = setup(|_| {
        vec![Step::write(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id\":\"x\",\"choices\":[",
        )]
    })
    .await;
    s.fails_over(false).await;
}

#[tokio::test]
async fn a_json_body_cut_by_connection_close_fails_over() {
    let s = setup(|_| {
        vec![Step::write(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"id\":\"x\",\"choices\":[",
        )]
    })
    .await;
    s.fails_over(false).await;
}

#[tokio::test]
async fn an_oversized_response_header_fails_over() {
    let big = "x".repeat(200 << 10);
    let s = setup(move |_| {
        vec![Step::write(format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-big: {big}\r\ncontent-length: 2\r\n\r\n{{}}"
        ))]
    })
    .await;
    s.fails_over(false).await;
}

#[tokio::test]
async fn the_gateways_own_502_names_the_replicas_and_what_failed() {
    // Both replicas close the connection without answering.
    let one = Scripted::start(|_| vec![]).await;
    let two = Scripted::start(|_| vec![]).await;
    let yaml = PAIR
        .replace("BAD_URL", &one.url())
        .replace("${GOOD_URL}", &two.url())
        .replace("id: good", "id: other");
    let gw = switchyard_tests::gateway(&yaml, &Default::default()).await;
    let http = Http::default();
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
        .await;
    assert_eq!(ans.status, 502, "{ans:?}");
    // Both replicas, then one more try on the group (its last untried
    // replica failed transiently and there is no fallback group).
    assert_eq!(ans.header("x-switchyard-attempts"), "3", "{ans:?}");
    let last = ans.header("x-switchyard-replica").to_owned();
    assert!(last == "bad" || last == "other", "{ans:?}");
    let message = ans.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("replica `bad`") && message.contains("replica `other`"),
        "every attempt is listed: {message}"
    );
    assert!(
        message.contains("connection closed before message completed"),
        "what failed, not hyper's top line: {message}"
    );
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_is_recorded_as_gone_not_ok() {
    let s = setup(|_| vec![Step::write(sse_head() + TOKEN), Step::Hang]).await;
    for _ in 0..4 {
        let resp = s.http.open_stream(s.gw.data_addr, &chat("m", true)).await;
        let by_bad = resp.headers()["x-switchyard-replica"] == "bad";
        drop(resp);
        if by_bad {
            let http = s.http.clone();
            let addr = s.gw.admin_addr;
            let mut seen = false;
            for _ in 0..500 {
                let text = http.get(addr, "/metrics").await;
                let text = String::from_utf8_lossy(&text.body).into_owned();
                if upstream_attempts(&text, "bad", "client_gone") == 1.0 {
                    assert_eq!(upstream_attempts(&text, "bad", "ok"), 0.0, "{text}");
                    seen = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(seen, "the attempt is recorded as client_gone");
            return;
        }
    }
    panic!("`bad` never answered");
}

#[tokio::test]
async fn a_large_body_cut_after_commit_is_short_for_the_client_and_recorded_broken() {
    // Over the whole-read size and not JSON: committed at its headers.
    let s = setup(|_| {
        vec![Step::write(
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 300000\r\n\r\n"
                .to_owned()
                + &"x".repeat(1000),
        )]
    })
    .await;
    for _ in 0..4 {
        let h = [("content-type", "application/json")];
        let body = chat("m", false).to_string();
        let resp = s
            .http
            .send("POST", s.gw.data_addr, "/v1/chat/completions", &h, body)
            .await;
        if resp.headers()["x-switchyard-replica"] != "bad" {
            continue;
        }
        assert_eq!(resp.headers()["content-length"], "300000");
        let read =
            switchyard_tests::within(http_body_util::BodyExt::collect(resp.into_body())).await;
        assert!(read.is_err(), "a cut body is not a complete answer");
        let m = s.metrics().await;
        assert_eq!(upstream_attempts(&m, "bad", "broken"), 1.0, "{m}");
        return;
    }
    panic!("`bad` never answered");
}
