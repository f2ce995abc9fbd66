//! One request: build it, send it, read the answer to the end, and judge it.
//! Every time is measured from the request's *intended* send time, so in an
//! open loop a request that waited for a slot is charged for the wait.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use tokio::time::Instant;

use super::sse::{SseEvent, SseParser, StreamState};
use super::{Endpoint, Verdict, Workload};

/// The HTTP client every request shares (one pool of keep-alive connections).
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A request ready to send many times: built once per (workload, prompt size)
/// so 100 KiB prompts are not re-rendered per request (a clone shares them).
#[derive(Clone)]
pub(crate) struct Prepared {
    pub(crate) uri: http::Uri,
    pub(crate) body: Bytes,
    /// `x-api-key`, when the workload has one.
    pub(crate) api_key: Option<http::HeaderValue>,
}

impl Prepared {
    /// Renders the path and JSON body of `w` with a prompt of `prompt_bytes`.
    pub(crate) fn new(base: &str, w: &Workload, prompt_bytes: usize) -> anyhow::Result<Self> {
        let prompt = make_prompt(prompt_bytes);
        let (path, body) = match w.endpoint {
            Endpoint::Chat => (
                "/v1/chat/completions".to_owned(),
                serde_json::json!({"model": w.model, "stream": w.stream,
                    "messages": [{"role": "user", "content": prompt}]}),
            ),
            Endpoint::Completions => (
                "/v1/completions".to_owned(),
                serde_json::json!({"model": w.model, "stream": w.stream, "prompt": prompt}),
            ),
            Endpoint::Embeddings => (
                "/v1/embeddings".to_owned(),
                serde_json::json!({"model": w.model, "input": prompt}),
            ),
            Endpoint::Kserve => (
                format!("/v2/models/{}/infer", w.model),
                serde_json::json!({"inputs": [{"name": "text", "shape": [1],
                    "datatype": "BYTES", "data": [prompt]}]}),
            ),
        };
        let uri = format!("{}{path}", base.trim_end_matches('/'));
        Ok(Self {
            uri: uri
                .parse()
                .map_err(|e| anyhow::anyhow!("url {uri:?}: {e}"))?,
            body: Bytes::from(body.to_string()),
            api_key: w
                .api_key
                .as_deref()
                .map(http::HeaderValue::from_str)
                .transpose()
                .map_err(|e| anyhow::anyhow!("api_key: {e}"))?,
        })
    }
}

/// ASCII filler of exactly `n` bytes.
fn make_prompt(n: usize) -> String {
    let mut p = "lorem ipsum dolor sit amet ".repeat(n / 27 + 1);
    p.truncate(n);
    p
}

/// Everything measured about one request.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) verdict: Option<Verdict>,
    pub(crate) status: Option<u16>,
    pub(crate) latency: Duration,
    pub(crate) ttfb: Option<Duration>,
    pub(crate) ttft: Option<Duration>,
    pub(crate) gaps: Vec<Duration>,
    /// Across each resume: last token before it to the first token after.
    pub(crate) resume_gaps: Vec<Duration>,
    pub(crate) tokens: u64,
    pub(crate) streamed: bool,
    pub(crate) replica: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) generation: Option<String>,
}

/// Sends `req` and reads the whole answer within `timeout` (counted from
/// the actual send; latency still counts from `intended`).
pub(crate) async fn send(
    client: &HttpClient,
    req: &Prepared,
    auth: Option<&http::HeaderValue>,
    intended: Instant,
    timeout: Duration,
) -> Outcome {
    let mut o = Outcome::default();
    let verdict =
        tokio::time::timeout(timeout, exchange(client, req, auth, intended, &mut o)).await;
    o.verdict = Some(verdict.unwrap_or(Verdict::Timeout));
    o.latency = intended.elapsed();
    o
}

fn header(h: &http::HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn exchange(
    client: &HttpClient,
    req: &Prepared,
    auth: Option<&http::HeaderValue>,
    intended: Instant,
    o: &mut Outcome,
) -> Verdict {
    let mut request =
        http::Request::post(req.uri.clone()).header(http::header::CONTENT_TYPE, "application/json");
    // A workload's own tenant key wins over the run's `--api-key`.
    if let Some(key) = &req.api_key {
        request = request.header("x-api-key", key.clone());
    } else if let Some(auth) = auth {
        request = request.header(http::header::AUTHORIZATION, auth);
    }
    let request = request.body(Full::new(req.body.clone()));
    let Ok(request) = request else {
        return Verdict::Reset;
    };
    let resp = match client.request(request).await {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Verdict::Connect,
        Err(_) => return Verdict::Reset,
    };
    let status = resp.status().as_u16();
    o.status = Some(status);
    let h = resp.headers();
    o.replica = header(h, "x-switchyard-replica").or_else(|| header(h, "x-fake-replica"));
    o.version = header(h, "x-switchyard-version");
    o.generation = header(h, "x-switchyard-config-generation");
    o.streamed = h
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut body = resp.into_body();
    let mut sse = o.streamed.then(SseParser::default);
    let mut state = StreamState::default();
    let mut whole = Vec::new();
    let mut last_token: Option<Instant> = None;
    let mut resuming = false;
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(f)) => f,
            Some(Err(_)) => return Verdict::Reset,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        o.ttfb.get_or_insert_with(|| intended.elapsed());
        match sse.as_mut() {
            Some(p) => p.feed(&data, |e| {
                resuming |= e == SseEvent::Resumed;
                if state.apply(&e) > 0 {
                    let now = Instant::now();
                    o.ttft.get_or_insert(now - intended);
                    if let Some(prev) = last_token.replace(now) {
                        let gaps = if std::mem::take(&mut resuming) {
                            &mut o.resume_gaps
                        } else {
                            &mut o.gaps
                        };
                        gaps.push(now - prev);
                    }
                }
            }),
            None if (200..300).contains(&status) => whole.extend_from_slice(&data),
            None => {}
        }
    }
    o.tokens = state.tokens;
    if !(200..300).contains(&status) {
        Verdict::Http(status)
    } else if o.streamed {
        state.verdict()
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(&whole).is_ok() {
        Verdict::Complete
    } else {
        Verdict::InvalidBody
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_have_the_asked_size_and_bodies_are_json() {
        assert_eq!(make_prompt(0).len(), 0);
        assert_eq!(make_prompt(102_400).len(), 102_400);
        for endpoint in [
            Endpoint::Chat,
            Endpoint::Completions,
            Endpoint::Embeddings,
            Endpoint::Kserve,
        ] {
            let w = Workload {
                endpoint,
                model: "m".into(),
                stream: false,
                api_key: None,
            };
            let p = Prepared::new("http://127.0.0.1:1/", &w, 300).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
            assert!(v.is_object());
            assert!(p.body.len() > 300);
            assert!(p.uri.path().starts_with("/v"));
        }
    }
}
