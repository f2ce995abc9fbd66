//! End-to-end tests: the real gateway, in-process, in front of fake replicas,
//! all on 127.0.0.1 port 0. Each test is bounded by `support::within`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_security;
mod adversarial;
mod budgets;
mod clouds;
mod cors;
mod dashboard;
mod discovery;
mod engine;
mod errors;
mod etcd_fleet;
mod failover;
mod global_limits;
mod health;
mod http1;
mod hygiene;
mod jwt;
mod keys;
mod kserve;
mod lifecycle;
mod lora;
mod metrics;
mod openai;
mod operator;
mod policies;
mod queue;
mod queue_balance;
mod reload;
mod resume;
mod resume_token_ids;
mod retries;
mod routing;
mod tenants;
mod tls;
mod tls_certs;
mod tracing;
mod workers;

use std::collections::HashMap;
use std::time::Duration;

use switchyard_fake_replica::{FakeReplica, ReplicaConfig};
use switchyard_gateway::Running;

/// Two versions of `chat` (75/25) over three replicas, and a KServe model.
pub const CONFIG: &str = r#"
server:
  limits:
    max_body_bytes: 65536
    request_timeout_ms: 3000
    shutdown_grace_ms: 10000
clouds:
  onprem: { provider: private }
  aws: { provider: aws }
models:
  - name: chat
    versions: [{ name: v1, weight: 75 }, { name: v2, weight: 25 }]
    routing: { queue_timeout_ms: 200 }
  - name: resnet
    versions: [{ name: "1", weight: 100 }]
replicas:
  - { id: a, model: chat, version: v1, cloud: onprem, url: "${A_URL}", upstream_model: llama-8b,
      max_concurrency: 4, auth: { bearer: "secret-a" } }
  - { id: b, model: chat, version: v1, cloud: onprem, url: "${B_URL}", upstream_model: llama-8b,
      max_concurrency: 4 }
  - { id: c, model: chat, version: v2, cloud: aws, url: "${C_URL}", max_concurrency: 4 }
  - { id: k, model: resnet, cloud: onprem, url: "${K_URL}", protocol: kserve_v2 }
"#;

/// The standard fleet: replicas a, b, c (chat) and k (resnet), fast.
pub async fn fleet(cfg: ReplicaConfig) -> (Running, HashMap<String, FakeReplica>) {
    let specs: Vec<(&str, ReplicaConfig)> = ["a", "b", "c", "k"]
        .iter()
        .map(|n| (*n, cfg.clone()))
        .collect();
    let replicas = switchyard_tests::replicas(&specs).await;
    let gw = switchyard_tests::gateway(CONFIG, &replicas).await;
    (gw, replicas)
}

/// A replica config that streams `tokens` tokens `gap_ms` apart.
pub fn streaming(tokens: u32, gap_ms: u64) -> ReplicaConfig {
    ReplicaConfig {
        tokens,
        inter_token: Duration::from_millis(gap_ms),
        ..ReplicaConfig::default()
    }
}
