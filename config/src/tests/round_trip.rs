//! A serialized config is a config file: load, serialize, fill the
//! `<redacted>` secrets back in, load again, and nothing has changed.

use super::resolve::{ca_pem, temp_file};
use crate::{Config, load_str};

/// What a `<redacted>` secret is replaced with before the output is loaded
/// again (a valid header value, as every secret must be).
const FILLED_IN: &str = "sk-filled-in";

/// Every section and every shape the file format has: limits, clouds with
/// and without region, routing with affinity, residency, health checks, a
/// rollout, replicas of each protocol, auth of each kind, TLS, both kinds
/// of cost, a link-local URL, AWS keys inline and from the environment.
fn everything() -> String {
    let ca = temp_file(ca_pem().as_bytes());
    let bearer = temp_file(b"tok-from-file\n");
    let value = temp_file(b"key-from-file");
    let leaf = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&leaf)
        .unwrap();
    let cert = temp_file(leaf_cert.pem().as_bytes());
    let key = temp_file(leaf.serialize_pem().as_bytes());
    format!(
        r#"
server:
  listen: 127.0.0.1:8080
  admin_listen: 0.0.0.0:9090
  admin_token: "${{ADMIN}}"
  workers: 3
  cors:
    allow_origins: ["https://app.example.com", "http://localhost:3000"]
    allow_headers: [x-trace]
    max_age_s: 120
  tls: {{ cert_file: "{cert}", key_file: "{key}" }}
  limits:
    max_body_bytes: 1048576
    max_header_bytes: 16384
    header_read_timeout_ms: 1000
    body_read_timeout_ms: 2000
    connect_timeout_ms: 300
    request_timeout_ms: 60000
    attempt_timeout_ms: 20000
    stream_idle_timeout_ms: 15000
    shutdown_grace_ms: 5000
    drain_timeout_ms: 7000
    shutdown_overlap_ms: 1500
    pool_idle_timeout_ms: 45000
    pool_max_idle_per_host: 4
    upstream_in_task: false
    first_token_timeout_ms: 8000
    first_token_ttft_multiple: 6
    first_token_floor_ms: 900
    sse_keepalive_ms: 10000
    max_buffered_bytes: 67108864
clouds:
  dc: {{ provider: private }}
  aws-east: {{ provider: aws, region: us-east-1 }}
  az: {{ provider: azure, region: westeurope }}
models:
  - name: chat
    versions: [{{ name: v1, weight: 90 }}, {{ name: v2, weight: 10 }}]
    fallbacks: [small]
    context_fallbacks: [small]
    routing:
      policy: affinity
      spill_at: 0.7
      queue_size: 12
      queue_timeout_ms: 750
      retry_after_max_ms: 1500
      max_resumes: 2
      slow_start_ms: 0
      affinity_header: X-Session
      affinity_prefix_bytes: 128
      affinity_load_factor: 1.5
    residency: [dc, aws, az]
    adapters: [sql-lora, org/chat-lora]
    health_check: {{ interval_ms: 2000, timeout_ms: 400, rise: 1, fall: 4, path: /health }}
    rollout:
      canary: v2
      steps: [10, 50, 100]
      step_interval_ms: 30000
      min_requests: 5
      max_error_rate_increase: 0.05
      max_p95_ratio: 2.5
  - name: small
    versions: [{{ name: "2025-06-01", weight: 100 }}]
    routing: {{ policy: cost_aware }}
    health_check: {{}}
  - name: embed
    versions: [{{ name: "1", weight: 100 }}]
replicas:
  - {{ id: plain, model: chat, version: v1, cloud: dc, url: "http://10.0.0.1:8000",
      upstream_model: llama-8b, max_concurrency: 8, weight: 3, resume: prefill,
      cost: {{ per_hour: 2.0, tokens_per_hour: 15000000 }}, auth: {{ bearer: "${{KEY}}" }} }}
  - {{ id: tls, model: chat, version: v2, cloud: dc, url: "https://gpu.internal/base",
      tls: {{ ca_file: "{ca}" }}, auth: {{ header: X-Api-Key, value: "${{KEY}}" }},
      cost: {{ input_per_1k: 0.5, output_per_1k: 1.5 }} }}
  - {{ id: files, model: small, cloud: dc, url: "http://10.0.0.3:8000",
      auth: {{ bearer_file: "{bearer}" }} }}
  - {{ id: link-local, model: small, cloud: dc, url: "http://169.254.10.1:8000",
      allow_link_local: true, auth: {{ header: api-key, value_file: "{value}" }} }}
  - {{ id: triton, model: embed, cloud: dc, url: "http://10.0.0.4:8000", protocol: kserve_v2 }}
  - {{ id: azure, model: small, cloud: az, url: "https://res.openai.azure.com",
      protocol: azure_openai, azure: {{ api_version: "2024-06-01" }},
      auth: {{ header: api-key, value: "${{KEY}}" }} }}
  - {{ id: azure-entra, model: chat, version: v1, cloud: az, url: "https://res.openai.azure.com",
      protocol: azure_openai, upstream_model: gpt-4o,
      azure: {{ deployment: chat-prod, api_version: "2024-06-01" }}, auth: {{ bearer: "${{KEY}}" }} }}
  - {{ id: bedrock, model: chat, version: v1, cloud: aws-east,
      url: "https://bedrock-runtime.us-east-1.amazonaws.com", protocol: bedrock,
      upstream_model: "meta.llama3-1-8b-instruct-v1:0",
      aws: {{ access_key_id: AKIDINLINE, secret_access_key: "${{KEY}}", session_token: tok }} }}
  - {{ id: sagemaker, model: small, cloud: aws-east,
      url: "https://runtime.sagemaker.eu-west-1.amazonaws.com", protocol: sagemaker,
      aws: {{ region: eu-west-1, endpoint_name: my-endpoint }} }}
global_limits:
  redis_url: "redis://10.0.0.9:6380/2"
  password: "${{KEY}}"
  key_prefix: fleet-a
  sync_interval_ms: 250
  slice: 0.25
  on_unavailable: closed
"#,
        ca = ca.display(),
        bearer = bearer.display(),
        value = value.display(),
        cert = cert.display(),
        key = key.display(),
    )
}

fn env(k: &str) -> Option<String> {
    let v = match k {
        "ADMIN" => "admin-secret",
        "KEY" => "sk-secret-value",
        "AWS_ACCESS_KEY_ID" => "AKIDFROMENV",
        "AWS_SECRET_ACCESS_KEY" => "env-secret-key",
        _ => return None,
    };
    Some(v.to_owned())
}

/// The parts of a config that must survive the round trip, compared by
/// their `Debug` form: it includes the derived fields the serialization
/// leaves out (providers, Bedrock model ids, trust anchors, prices per
/// token) and shows secrets as `<redacted>`.
fn contents(c: &Config) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        c.server, c.clouds, c.models, c.replicas, c.global_limits
    )
}

/// Loads `yaml`, serializes it, loads the output with the secrets filled
/// in (no environment: everything is in the output), and checks that the
/// second serialization and the config itself are the same. The JSON of
/// `GET /admin/config` is YAML too: it goes through the same check.
pub(super) fn round_trip(name: &str, yaml: &str, env: &dyn Fn(&str) -> Option<String>) {
    let first = load_str(yaml, env).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = serde_yaml_ng::to_string(&first).unwrap();
    for bad in ["null", "!", "_ms: {", "provider: aws\n  id"] {
        assert!(!out.contains(bad), "{name}: `{bad}` in the output:\n{out}");
    }
    let json = serde_json::to_string_pretty(&first).unwrap();
    for (format, text) in [("yaml", &out), ("json", &json)] {
        let again = load_str(&text.replace("<redacted>", FILLED_IN), &|_| None)
            .unwrap_or_else(|e| panic!("{name}: the {format} output does not load: {e}\n{text}"));
        assert_eq!(
            serde_yaml_ng::to_string(&again).unwrap(),
            out,
            "{name}: {format} round trip"
        );
        assert_eq!(
            contents(&again),
            contents(&first),
            "{name}: {format} round trip"
        );
    }
}

#[test]
fn every_section_round_trips_through_its_serialization() {
    round_trip("everything", &everything(), &env);
}

#[test]
fn the_output_names_fields_as_the_file_does_and_hides_secrets() {
    let out = serde_yaml_ng::to_string(&load_str(&everything(), &env).unwrap()).unwrap();
    for secret in [
        "admin-secret",
        "sk-secret-value",
        "AKIDINLINE",
        "AKIDFROMENV",
        "env-secret-key",
        "tok-from-file",
        "key-from-file",
    ] {
        assert!(!out.contains(secret), "secret `{secret}` printed:\n{out}");
    }
    for expected in [
        "header_read_timeout_ms: 1000",
        "sse_keepalive_ms: 10000",
        "queue_timeout_ms: 750",
        "retry_after_max_ms: 1500",
        "context_fallbacks:",
        "slow_start_ms: 0",
        "affinity_header: x-session",
        "affinity_load_factor: 1.5",
        "interval_ms: 2000",
        "step_interval_ms: 30000",
        "protocol: sagemaker",
        "endpoint_name: my-endpoint",
        "allow_link_local: true",
        "per_hour: 2.0",
        "bearer: <redacted>",
        "admin_token: <redacted>",
        "sync_interval_ms: 250",
        "password: <redacted>",
        "on_unavailable: closed",
    ] {
        assert!(out.contains(expected), "no `{expected}` in:\n{out}");
    }
    for absent in [
        "cloud_api",
        "model_id",
        "hash",
        "id: dc",
        "input_per_1k: 0.13",
    ] {
        assert!(!out.contains(absent), "`{absent}` in:\n{out}");
    }
}

#[test]
fn the_examples_round_trip() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let yaml = std::fs::read_to_string(&path).unwrap();
            // Every variable they use has a `${VAR:-default}`, but the
            // container's client key, which must come from its environment.
            let env = |k: &str| (k == "SWITCHYARD_API_KEY").then(|| "k".repeat(32));
            round_trip(&path.display().to_string(), &yaml, &env);
            seen += 1;
        }
    }
    assert!(seen >= 2, "examples not found in {}", dir.display());
}

#[test]
fn the_output_posted_back_with_its_placeholders_is_refused() {
    let out = serde_yaml_ng::to_string(&load_str(&everything(), &env).unwrap()).unwrap();
    let refused = load_str(&out, &|_| None).unwrap_err().to_string();
    for field in [
        "server.admin_token",
        "replicas[0].auth.bearer",
        "replicas[1].auth.value",
        "replicas[7].aws.access_key_id",
        "replicas[7].aws.session_token",
        "replicas[8].aws.secret_access_key",
    ] {
        assert!(
            refused.contains(&format!(
                "{field}: the secret is the `<redacted>` placeholder"
            )),
            "{field} not refused:\n{refused}"
        );
    }
}
