//! Engine-signal scraping: every private replica that declares an `engine`
//! has its Prometheus `/metrics` read at its group's `engine_interval_ms`,
//! and the queue depth, running requests and KV-cache use it reports go to
//! the replica's live stats, where routing reads them (`least_loaded`,
//! `cost_aware`, `prefix_cache`).
//!
//! vLLM engines also report their LoRA adapters (`lora.rs`), which
//! routing prefers for requests naming one.
//!
//! Metric names follow the Gateway API Inference Extension's model-server
//! protocol (vLLM, SGLang, trtllm-serve, Triton TensorRT-LLM), plus TGI's
//! queue and batch gauges. A vLLM `/metrics` page is mostly histograms
//! (tens of KB); the three gauges are found with a SIMD substring search,
//! not a full parse, so a thousand replicas every 250 ms stay cheap.
//!
//! One scrape per replica at a time, each bounded by the interval (at most
//! 1 s) and by [`MAX_BODY`]; a replica that does not answer keeps its last
//! figures, which go stale and are then ignored by routing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use memchr::memmem;
use switchyard_config::Engine;
use switchyard_router::{EngineFigures, ReplicaStats, clock};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::reload::Controller;

pub mod lora;

/// Largest metrics page read (vLLM's is tens of KB).
pub const MAX_BODY: usize = 4 << 20;

/// Scrapes until `stop` is cancelled (see the module docs).
pub async fn run(gw: Arc<Controller>, stop: CancellationToken) {
    let mut due: HashMap<String, Instant> = HashMap::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut scrapes: JoinSet<String> = JoinSet::new();
    let mut wake = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            // A finished scrape only frees its replica: the next round
            // starts at the next due time, not once per completion (a
            // round walks every replica).
            Some(Ok(id)) = scrapes.join_next() => { busy.remove(&id); }
            () = tokio::time::sleep_until(wake) => {
                wake = round(&gw, &mut due, &mut busy, &mut scrapes);
            }
        }
    }
    scrapes.shutdown().await;
}

/// Starts the scrapes that are due; returns when the next one is.
fn round(
    gw: &Controller,
    due: &mut HashMap<String, Instant>,
    busy: &mut HashSet<String>,
    scrapes: &mut JoinSet<String>,
) -> Instant {
    let snap = gw.proxy().snapshot();
    let now = Instant::now();
    // With no engine replicas, look again in a second (a reload may add some).
    let mut wake = now + Duration::from_secs(1);
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, e) in snap.table.entries().iter().enumerate() {
        let Some(engine) = e.replica.engine else {
            continue;
        };
        let Some(group) = snap.table.group(&e.replica.model) else {
            continue;
        };
        let every = group.scoring.engine_interval;
        let adapters = group.serves_adapters;
        let id = &e.replica.id;
        seen.insert(id);
        // Looked up by reference: no allocation per replica per round.
        let at = due.get(id.as_str()).copied().unwrap_or(now);
        if at > now || busy.contains(id.as_str()) {
            wake = wake.min(at.max(now + Duration::from_millis(5)));
            continue;
        }
        match due.get_mut(id.as_str()) {
            Some(t) => *t = now + every,
            None => {
                due.insert(id.clone(), now + every);
            }
        }
        wake = wake.min(now + every);
        let up = &snap.upstreams[i];
        let request = up.uri(e.replica.metrics_path.clone()).ok().and_then(|uri| {
            let body = Bytes::new();
            let mut req = Request::new(Full::new(body.clone()));
            *req.method_mut() = Method::GET;
            *req.uri_mut() = uri;
            // The replica's own credentials: one path for every request.
            up.authorize(&mut req, &body).ok().map(|()| req)
        });
        let Some(request) = request else {
            continue;
        };
        busy.insert(id.clone());
        let client = up.client(&snap.client).clone();
        let (stats, id) = (Arc::clone(&e.stats), id.clone());
        let timeout = every.min(Duration::from_secs(1));
        scrapes.spawn(async move {
            scrape(&client, request, timeout, (engine, adapters), &stats).await;
            id
        });
    }
    due.retain(|id, _| seen.contains(id.as_str()));
    wake
}

/// One scrape: the figures, or nothing (the old ones age out). The LoRA
/// adapters are looked for only when the group lists some.
async fn scrape(
    client: &switchyard_proxy::upstream::UpstreamClient,
    req: Request<Full<Bytes>>,
    timeout: Duration,
    (engine, adapters): (Engine, bool),
    stats: &ReplicaStats,
) {
    let page = async {
        let resp = client.request(req).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .ok()
            .map(|b| b.to_bytes())
    };
    let Ok(Some(page)) = tokio::time::timeout(timeout, page).await else {
        return;
    };
    if let Some(figures) = parse(engine, &page) {
        let now = clock();
        stats.engine.update(figures, stats.in_flight(), now);
        let lora = adapters.then(|| lora::parse(engine, &page)).flatten();
        stats.lora.update(lora, now);
    }
}

/// A gauge to find: its name and, for Triton's labelled families, the one
/// label that must be present (`request_type="waiting"`).
struct Gauge {
    name: &'static str,
    label: Option<&'static str>,
}

/// (waiting, running, KV use) gauges of each engine, in order of preference.
fn gauges(engine: Engine) -> (&'static [Gauge], &'static [Gauge], &'static [Gauge]) {
    match engine {
        Engine::Vllm => (
            &[Gauge {
                name: "vllm:num_requests_waiting",
                label: None,
            }],
            &[Gauge {
                name: "vllm:num_requests_running",
                label: None,
            }],
            // Renamed in vLLM 0.10; older releases have the GPU name.
            &[
                Gauge {
                    name: "vllm:kv_cache_usage_perc",
                    label: None,
                },
                Gauge {
                    name: "vllm:gpu_cache_usage_perc",
                    label: None,
                },
            ],
        ),
        Engine::Sglang => (
            &[Gauge {
                name: "sglang:num_queue_reqs",
                label: None,
            }],
            &[Gauge {
                name: "sglang:num_running_reqs",
                label: None,
            }],
            &[Gauge {
                name: "sglang:token_usage",
                label: None,
            }],
        ),
        Engine::TrtllmServe => (
            &[Gauge {
                name: "trtllm_num_requests_waiting",
                label: None,
            }],
            &[Gauge {
                name: "trtllm_num_requests_running",
                label: None,
            }],
            &[Gauge {
                name: "trtllm_kv_cache_utilization",
                label: None,
            }],
        ),
        Engine::TritonTrtllm => (
            &[Gauge {
                name: "nv_trt_llm_request_metrics",
                label: Some("request_type=\"waiting\""),
            }],
            &[Gauge {
                name: "nv_trt_llm_request_metrics",
                label: Some("request_type=\"scheduled\""),
            }],
            &[Gauge {
                name: "nv_trt_llm_kv_cache_block_metrics",
                label: Some("kv_cache_block_type=\"fraction\""),
            }],
        ),
        Engine::Tgi => (
            &[Gauge {
                name: "tgi_queue_size",
                label: None,
            }],
            &[Gauge {
                name: "tgi_batch_current_size",
                label: None,
            }],
            &[],
        ),
    }
}

/// The engine's figures from a metrics page; `None` when its queue gauge
/// is missing (not the engine it was said to be, or not ready).
pub fn parse(engine: Engine, page: &[u8]) -> Option<EngineFigures> {
    let (waiting, running, kv) = gauges(engine);
    let first = |set: &[Gauge]| set.iter().find_map(|gauge| value(page, gauge));
    Some(EngineFigures {
        waiting: first(waiting)?.max(0.0) as u32,
        running: first(running).unwrap_or(0.0).max(0.0) as u32,
        kv: first(kv).map(|v| v.clamp(0.0, 1.0)),
    })
}

/// The sum of a gauge's samples (engines with several model names or
/// data-parallel ranks report one series each).
fn value(page: &[u8], gauge: &Gauge) -> Option<f64> {
    let mut sum = None;
    for at in memmem::find_iter(page, gauge.name.as_bytes()) {
        // A sample line starts with the name; `# HELP`/`# TYPE` lines and
        // longer names that share the prefix are skipped.
        if at > 0 && page[at - 1] != b'\n' {
            continue;
        }
        let line = &page[at..];
        let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
        let rest = &line[gauge.name.len()..];
        let (labels, rest) = match rest.first() {
            Some(b'{') => match memchr::memchr(b'}', rest) {
                Some(end) => (&rest[1..end], &rest[end + 1..]),
                None => continue,
            },
            Some(b' ') => (&b""[..], rest),
            _ => continue,
        };
        if let Some(label) = gauge.label
            && memmem::find(labels, label.as_bytes()).is_none()
        {
            continue;
        }
        let Some(v) = std::str::from_utf8(rest)
            .ok()
            .and_then(|r| r.split_ascii_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        else {
            continue;
        };
        *sum.get_or_insert(0.0) += v;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM: &str = "\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine=\"0\",model_name=\"llama\"} 7.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine=\"0\",model_name=\"llama\"} 3.0
vllm:num_requests_waiting_by_reason{reason=\"capacity\"} 99.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"llama\"} 0.42
vllm:time_to_first_token_seconds_bucket{le=\"0.1\"} 12.0
";

    #[test]
    fn vllm_gauges_are_read_and_lookalikes_ignored() {
        let f = parse(Engine::Vllm, VLLM.as_bytes()).unwrap();
        assert_eq!((f.waiting, f.running), (3, 7));
        assert!((f.kv.unwrap() - 0.42).abs() < 1e-9);
        // Older vLLM: the GPU cache name.
        let old = VLLM.replace("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc");
        assert!((parse(Engine::Vllm, old.as_bytes()).unwrap().kv.unwrap() - 0.42).abs() < 1e-9);
    }

    #[test]
    fn data_parallel_ranks_add_up_and_triton_labels_select_the_series() {
        let sglang = "sglang:num_queue_reqs{dp=\"0\"} 2\nsglang:num_queue_reqs{dp=\"1\"} 5\nsglang:token_usage 0.5\n";
        let f = parse(Engine::Sglang, sglang.as_bytes()).unwrap();
        assert_eq!(f.waiting, 7);
        let triton = "nv_trt_llm_request_metrics{model=\"m\",request_type=\"scheduled\"} 4\n\
                      nv_trt_llm_request_metrics{model=\"m\",request_type=\"waiting\"} 6\n\
                      nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"fraction\"} 0.25\n\
                      nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"max\"} 9000\n";
        let f = parse(Engine::TritonTrtllm, triton.as_bytes()).unwrap();
        assert_eq!((f.waiting, f.running), (6, 4));
        assert_eq!(f.kv, Some(0.25));
    }

    #[test]
    fn tgi_has_no_kv_gauge_and_a_page_without_the_queue_is_no_figures() {
        let f = parse(Engine::Tgi, b"tgi_queue_size 3\ntgi_batch_current_size 8\n").unwrap();
        assert_eq!((f.waiting, f.running, f.kv), (3, 8, None));
        assert_eq!(parse(Engine::Vllm, b"something_else 1\n"), None);
        assert_eq!(
            parse(Engine::Vllm, b"vllm:num_requests_waiting NaN\n"),
            None
        );
    }
}
