//! `switchyard demo`: the gateway plus seven simulated replicas in three
//! clouds, in one process, on loopback. It loads `examples/three-clouds.yaml`
//! (embedded in the binary) through the same loader as `switchyard run`,
//! with each replica's `${..._URL}` pointed at a fake replica started here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use switchyard_fake_replica::{FakeReplica, ReplicaConfig};

/// The demo's config, the same file users can read and copy.
pub const CONFIG: &str = include_str!("../../examples/three-clouds.yaml");

/// Fake replicas: env var naming the URL, replica name, model it reports, latency ms.
const REPLICAS: [(&str, &str, &str, u64); 7] = [
    (
        "PRIVATE_1_URL",
        "private-1",
        "meta-llama/Llama-3.1-8B-Instruct",
        20,
    ),
    (
        "PRIVATE_2_URL",
        "private-2",
        "meta-llama/Llama-3.1-8B-Instruct",
        20,
    ),
    ("AWS_1_URL", "aws-1", "meta-llama/Llama-3.1-8B-Instruct", 45),
    (
        "AZURE_1_URL",
        "azure-1",
        "meta-llama/Llama-3.3-70B-Instruct",
        60,
    ),
    ("AWS_2_URL", "aws-2", "chat-small", 40),
    ("AZURE_2_URL", "azure-2", "chat-small", 55),
    ("PRIVATE_3_URL", "private-3", "resnet", 5),
];

/// Starts the replicas and the gateway, prints how to use them, and serves
/// until Ctrl-C or SIGTERM.
pub async fn run(listen: SocketAddr, admin_listen: SocketAddr) -> anyhow::Result<()> {
    let mut env = HashMap::new();
    let mut replicas = Vec::new();
    for (var, name, model, latency_ms) in REPLICAS {
        let cfg = ReplicaConfig {
            name: name.to_owned(),
            model: model.to_owned(),
            latency: Duration::from_millis(latency_ms),
            tokens: 24,
            inter_token: Duration::from_millis(25),
            ..ReplicaConfig::default()
        };
        let replica = FakeReplica::start(cfg)
            .await
            .context("starting a fake replica")?;
        env.insert(var.to_owned(), replica.url());
        replicas.push(replica);
    }
    env.insert("SWITCHYARD_LISTEN".to_owned(), listen.to_string());
    env.insert(
        "SWITCHYARD_ADMIN_LISTEN".to_owned(),
        admin_listen.to_string(),
    );
    let config = switchyard_config::load_str(CONFIG, &|k| env.get(k).cloned())
        .context("the embedded demo config is invalid")?;
    let running = crate::start(config)
        .await
        .context("starting the gateway (use --listen / --admin-listen for other ports)")?;
    print_banner(running.data_addr, running.admin_addr);
    crate::signal::shutdown_requested().await;
    eprintln!("\nshutting down: letting in-flight requests finish...");
    running.shutdown().await?;
    for r in replicas {
        r.shutdown().await;
    }
    Ok(())
}

fn print_banner(data: SocketAddr, admin: SocketAddr) {
    println!(
        r#"
Switchyard demo is running: 7 simulated replicas in 3 clouds (onprem, aws-use1, azure-weu).

  gateway   http://{data}      (OpenAI /v1/*, KServe v2 /v2/*)
  admin     http://{admin}     (/admin/replicas, /admin/config, /healthz, /readyz)

Stream a chat completion (90% v1, 10% the v2 canary):

  curl -N http://{data}/v1/chat/completions \
    -H 'content-type: application/json' \
    -d '{{"model":"chat","stream":true,"messages":[{{"role":"user","content":"Hello!"}}]}}'

Pin the canary:    ... -d '{{"model":"chat@v2","messages":[{{"role":"user","content":"Hi"}}]}}'
KServe v2 infer:   curl http://{data}/v2/models/resnet/infer -d '{{"inputs":[{{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}}]}}'
Replica table:     curl http://{admin}/admin/replicas

Press Ctrl-C to stop."#
    );
}
