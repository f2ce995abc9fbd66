//! The demo's synthetic traffic: a few requests a second through the data
//! plane, like a client would send them, and now and then a fault injected
//! into one replica so that an ejection and its recovery can be watched.
//!
//! Arrivals are Poisson with a rate that swings slowly between 2 and 8
//! requests/s (so the sparklines have a shape), over a mix of `chat`
//! (the 90/10 canary split), `chat@v2`, `chat-small` and KServe `resnet`,
//! streaming and not. At most [`MAX_IN_FLIGHT`] requests run at once, so a
//! stalled gateway cannot make the driver pile up work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use switchyard_fake_replica::{FakeReplica, Fault, FaultRule};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use switchyard_control::Controller;

/// Requests the driver keeps in flight at most.
pub const MAX_IN_FLIGHT: usize = 48;
/// When the first fault is injected, after the start.
const FIRST_FAULT: Duration = Duration::from_secs(8);
/// How long a fault lasts: long enough for an ejection and a failed probe.
const FAULT_FOR: Duration = Duration::from_secs(15);
/// From one fault's start to the next one's.
const FAULT_EVERY: Duration = Duration::from_secs(45);
/// Longest a single request may take before the driver gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The running traffic driver; owned by the demo, stopped before the gateway.
pub struct Traffic {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Traffic {
    /// Starts sending requests to the data plane at `data`, taking turns at
    /// breaking the `targets` (name, replica) and noting it in `gw`'s events.
    pub fn spawn(
        data: SocketAddr,
        gw: Arc<Controller>,
        targets: Vec<(String, Arc<FakeReplica>)>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        #[allow(
            clippy::disallowed_methods,
            reason = "owned: `stop` signals it and awaits its handle"
        )]
        let task = tokio::spawn(drive(data, gw, targets, stopped));
        Self { stop, task }
    }

    /// Stops sending, abandons requests still in flight, clears any fault.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn drive(
    data: SocketAddr,
    gw: Arc<Controller>,
    targets: Vec<(String, Arc<FakeReplica>)>,
    mut stopped: watch::Receiver<bool>,
) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let start = Instant::now();
    let mut faults = Faults::new(targets, start);
    let mut requests = JoinSet::new();
    loop {
        faults.step(Instant::now(), &gw);
        while requests.try_join_next().is_some() {}
        if requests.len() < MAX_IN_FLIGHT {
            requests.spawn(one_request(client.clone(), data));
        }
        let gap = next_gap(start.elapsed());
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            () = tokio::time::sleep(gap) => {}
        }
    }
    requests.shutdown().await;
    faults.clear(&gw);
}

/// Time to the next arrival: exponential around a rate that swings between
/// 2 and 8 requests/s over two minutes.
fn next_gap(elapsed: Duration) -> Duration {
    let phase = elapsed.as_secs_f64() / 120.0 * std::f64::consts::TAU;
    let rate = 5.0 + 3.0 * phase.sin();
    let u = 1.0 - fastrand::f64(); // (0, 1]: ln is finite
    Duration::from_secs_f64((-u.ln() / rate).min(2.0))
}

/// Sends one request of the mix and reads the answer to its end.
async fn one_request(client: HttpClient, data: SocketAddr) {
    let (path, body) = pick_request();
    let req = http::Request::post(format!("http://{data}{path}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)));
    let Ok(req) = req else { return };
    let exchange = async {
        let resp = client.request(req).await.ok()?;
        resp.into_body().collect().await.ok()
    };
    if tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
        .is_none()
    {
        tracing::debug!(path, "demo request failed or timed out");
    }
}

/// A path and JSON body from the mix.
fn pick_request() -> (&'static str, String) {
    let r = fastrand::f64();
    let (model, stream_share) = match r {
        r if r < 0.50 => ("chat", 0.6),
        r if r < 0.65 => ("chat@v2", 0.5),
        r if r < 0.93 => ("chat-small", 0.3),
        _ => {
            let body =
                r#"{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}"#;
            return ("/v2/models/resnet/infer", body.to_owned());
        }
    };
    let stream = fastrand::f64() < stream_share;
    let max_tokens = fastrand::u32(12..=48);
    let body = serde_json::json!({
        "model": model,
        "stream": stream,
        "max_tokens": max_tokens,
        "messages": [{ "role": "user", "content": "synthetic demo traffic" }],
    });
    ("/v1/chat/completions", body.to_string())
}

/// Takes turns at breaking one target replica for [`FAULT_FOR`].
struct Faults {
    targets: Vec<(String, Arc<FakeReplica>)>,
    next_change: Instant,
    /// Index into `targets` of the replica broken now.
    active: Option<usize>,
    turn: usize,
}

impl Faults {
    fn new(targets: Vec<(String, Arc<FakeReplica>)>, start: Instant) -> Self {
        Self {
            targets,
            next_change: start + FIRST_FAULT,
            active: None,
            turn: 0,
        }
    }

    fn step(&mut self, now: Instant, gw: &Controller) {
        if now < self.next_change || self.targets.is_empty() {
            return;
        }
        if self.active.is_some() {
            self.clear(gw);
            self.next_change += FAULT_EVERY - FAULT_FOR;
            return;
        }
        let i = self.turn % self.targets.len();
        self.turn += 1;
        let (name, replica) = &self.targets[i];
        replica.set_fault(FaultRule::always(Fault::Error { status: 500 }));
        self.active = Some(i);
        self.next_change = now + FAULT_FOR;
        gw.events.push(
            "fault_injected",
            name.as_str(),
            format!(
                "demo: {name} answers 500 to every request for {} s",
                FAULT_FOR.as_secs()
            ),
        );
    }

    fn clear(&mut self, gw: &Controller) {
        if let Some(i) = self.active.take() {
            let (name, replica) = &self.targets[i];
            replica.clear_fault();
            gw.events.push(
                "fault_cleared",
                name.as_str(),
                format!("demo: {name} answers normally again"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_valid_json_for_every_model() {
        for _ in 0..200 {
            let (path, body) = pick_request();
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if path == "/v1/chat/completions" {
                let model = v["model"].as_str().expect("model");
                assert!(["chat", "chat@v2", "chat-small"].contains(&model));
            } else {
                assert_eq!(path, "/v2/models/resnet/infer");
            }
        }
    }

    #[test]
    fn gaps_are_bounded_and_average_a_few_per_second() {
        let n = 5_000;
        let total: f64 = (0..n)
            .map(|i| next_gap(Duration::from_millis(i * 24)).as_secs_f64())
            .sum();
        let mean = total / n as f64;
        assert!((0.1..0.5).contains(&mean), "mean gap {mean}");
        assert!(next_gap(Duration::ZERO) <= Duration::from_secs(2));
    }
}
