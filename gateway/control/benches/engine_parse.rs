//! What reading one engine's metrics page costs: a vLLM-shaped page of
//! ~60 KB (mostly histograms, as real ones are), three gauges found.

#![allow(missing_docs, clippy::unwrap_used)]

use std::fmt::Write;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard_config::Engine;
use switchyard_control::engine::parse;

fn vllm_page() -> String {
    let mut p = String::new();
    let labels = r#"engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct""#;
    for family in [
        "time_to_first_token_seconds",
        "inter_token_latency_seconds",
        "e2e_request_latency_seconds",
        "request_queue_time_seconds",
        "request_prefill_time_seconds",
        "request_decode_time_seconds",
        "request_prompt_tokens",
        "request_generation_tokens",
    ] {
        writeln!(p, "# HELP vllm:{family} Histogram of {family}.").unwrap();
        writeln!(p, "# TYPE vllm:{family} histogram").unwrap();
        for le in 0..40 {
            writeln!(
                p,
                "vllm:{family}_bucket{{{labels},le=\"{}\"}} {}",
                le as f64 * 0.25,
                le * 17
            )
            .unwrap();
        }
        writeln!(p, "vllm:{family}_sum{{{labels}}} 1234.5").unwrap();
        writeln!(p, "vllm:{family}_count{{{labels}}} 678").unwrap();
    }
    for (name, v) in [
        ("num_requests_running", "7"),
        ("num_requests_waiting", "3"),
        ("kv_cache_usage_perc", "0.42"),
    ] {
        writeln!(p, "# TYPE vllm:{name} gauge\nvllm:{name}{{{labels}}} {v}").unwrap();
    }
    p
}

fn engine_parse(c: &mut Criterion) {
    let page = vllm_page();
    assert!(parse(Engine::Vllm, page.as_bytes()).is_some());
    let mut g = c.benchmark_group("engine_metrics");
    g.throughput(Throughput::Bytes(page.len() as u64));
    g.bench_function(format!("vllm page of {} KB", page.len() / 1024), |b| {
        b.iter(|| parse(Engine::Vllm, black_box(page.as_bytes())))
    });
    g.finish();
}

criterion_group!(benches, engine_parse);
criterion_main!(benches);
