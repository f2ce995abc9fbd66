//! `switchyard-demo`: the gateway plus seven simulated replicas in three
//! clouds, in one process, on loopback. It loads `examples/three-clouds.yaml`
//! (embedded in the binary) through the same loader as `switchyard run`,
//! with each replica's `${..._URL}` pointed at a fake replica started here.
//!
//! Unless told not to, it also drives light synthetic traffic (see
//! [`traffic`]) so that the dashboard at the admin address shows the fleet
//! in motion: throughput, the canary split, an ejection and its recovery.

pub mod traffic;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_fake_replica::{FakeReplica, ReplicaConfig};

use switchyard_control::reload::Source;
use switchyard_gateway::Running;

/// The demo's config, the same file users can read and copy.
pub const CONFIG: &str = include_str!("../../../examples/three-clouds.yaml");

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

/// Replicas the traffic driver takes turns breaking (they share their
/// model group with a healthy sibling, so clients never notice).
const FAULT_TARGETS: [&str; 2] = ["private-2", "aws-2"];

/// A running demo: the gateway, its fake replicas and (optionally) the
/// synthetic traffic. The browser test starts one on port 0.
pub struct Demo {
    running: Running,
    /// The demo tenant's key (random per run unless SWITCHYARD_DEMO_KEY is set).
    api_key: String,
    /// Where keys made with `POST /admin/keys` are kept; removed at shutdown.
    keys_file: std::path::PathBuf,
    replicas: Vec<Arc<FakeReplica>>,
    traffic: Option<traffic::Traffic>,
}

impl Demo {
    /// Starts the replicas and the gateway on the given addresses (port 0
    /// picks a free one), and the synthetic traffic when `traffic` is set.
    pub async fn start(
        listen: SocketAddr,
        admin_listen: SocketAddr,
        traffic: bool,
    ) -> anyhow::Result<Self> {
        let mut env = HashMap::new();
        let mut replicas = Vec::new();
        let mut targets = Vec::new();
        for (var, name, model, latency_ms) in REPLICAS {
            let cfg = ReplicaConfig {
                name: name.to_owned(),
                model: model.to_owned(),
                latency: Duration::from_millis(latency_ms),
                tokens: 48,
                inter_token: Duration::from_millis(25),
                protocol: fake_cloud(name),
                ..ReplicaConfig::default()
            };
            let replica = Arc::new(
                FakeReplica::start(cfg)
                    .await
                    .context("starting a fake replica")?,
            );
            env.insert(var.to_owned(), replica.url());
            if FAULT_TARGETS.contains(&name) {
                targets.push((name.to_owned(), Arc::clone(&replica)));
            }
            replicas.push(replica);
        }
        let api_key = match std::env::var("SWITCHYARD_DEMO_KEY") {
            Ok(k) if !k.trim().is_empty() => k,
            _ => switchyard_control::keys::new_secret().context("generating the demo key")?,
        };
        env.insert("SWITCHYARD_DEMO_KEY".to_owned(), api_key.clone());
        env.insert("SWITCHYARD_LISTEN".to_owned(), listen.to_string());
        env.insert(
            "SWITCHYARD_ADMIN_LISTEN".to_owned(),
            admin_listen.to_string(),
        );
        let config = switchyard_config::load_str(CONFIG, &|k| env.get(k).cloned())
            .context("the embedded demo config is invalid")?;
        let running = switchyard_gateway::start(config)
            .await
            .context("starting the gateway (use --listen / --admin-listen for other ports)")?;
        let keys_file = std::env::temp_dir().join(format!(
            "switchyard-demo-{}-{}.keys.json",
            std::process::id(),
            running.admin_addr.port()
        ));
        running
            .open_keys(&keys_file)
            .context("opening the demo's key state file")?;
        // POST /admin/config and /admin/reload interpolate with the demo's variables.
        running
            .control()
            .set_source(Source::embedded(CONFIG, env.clone()));
        let traffic = traffic.then(|| {
            traffic::Traffic::spawn(running.data_addr, Arc::clone(running.control()), targets)
        });
        Ok(Self {
            running,
            api_key,
            keys_file,
            replicas,
            traffic,
        })
    }

    /// The gateway (its addresses, its state).
    pub fn running(&self) -> &Running {
        &self.running
    }

    /// The demo tenant's API key.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Stops the traffic, then the gateway (letting in-flight requests
    /// finish), then the replicas.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(t) = self.traffic {
            t.stop().await;
        }
        self.running.shutdown().await?;
        let _ = std::fs::remove_file(&self.keys_file);
        for r in self.replicas {
            match Arc::try_unwrap(r) {
                Ok(r) => r.shutdown().await,
                Err(shared) => drop(shared),
            }
        }
        Ok(())
    }
}

/// Runs the demo, prints how to use it, and serves until Ctrl-C or SIGTERM.
pub async fn run(
    listen: SocketAddr,
    admin_listen: SocketAddr,
    traffic: bool,
) -> anyhow::Result<()> {
    let demo = Demo::start(listen, admin_listen, traffic).await?;
    print_banner(
        demo.running.data_addr,
        demo.running.admin_addr,
        traffic,
        &demo.api_key,
    );
    switchyard_gateway::signal::shutdown_requested().await;
    eprintln!("\nshutting down: letting in-flight requests finish...");
    demo.shutdown().await
}

fn print_banner(data: SocketAddr, admin: SocketAddr, traffic: bool, key: &str) {
    let traffic = if traffic {
        "Synthetic traffic is on (a few requests/s; now and then one replica is made to fail\n\
         so you can watch it get ejected and recover). Start with --no-traffic for a quiet fleet."
    } else {
        "Synthetic traffic is off (--no-traffic): the numbers move when you send requests."
    };
    println!(
        r#"
Switchyard demo is running: 7 simulated replicas in 3 clouds (onprem, aws-use1, azure-weu).

  dashboard http://{admin}/      (live replica table, version weights, events)
  gateway   http://{data}      (OpenAI /v1/*, KServe v2 /v2/*)
  admin     http://{admin}     (/admin/replicas, /admin/config, /admin/events, /metrics, /healthz, /readyz)

{traffic}

Stream a chat completion (90% v1, 10% the v2 canary):

  curl -N http://{data}/v1/chat/completions \
    -H 'content-type: application/json' \
    -d '{{"model":"chat","stream":true,"messages":[{{"role":"user","content":"Hello!"}}]}}'

As tenant `demo` (60 requests/min, 4 at once, priority up to normal; 429
with Retry-After beyond), with its key:

  curl http://{data}/v1/chat/completions \
    -H 'authorization: Bearer {key}' \
    -H 'content-type: application/json' \
    -d '{{"model":"chat","messages":[{{"role":"user","content":"Hello!"}}]}}'

More keys (shown once): curl http://{admin}/admin/keys -H 'content-type: application/json' -d '{{"tenant":"demo","name":"mine"}}'
Requests without a key are served too (server.allow_unauthenticated, loopback only); a wrong key is 401.

Pin the canary:    ... -d '{{"model":"chat@v2","messages":[{{"role":"user","content":"Hi"}}]}}'
KServe v2 infer:   curl http://{data}/v2/models/resnet/infer -d '{{"inputs":[{{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}}]}}'
Replica table:     curl http://{admin}/admin/replicas

Press Ctrl-C to stop."#
    );
}

/// The "aws" replicas speak Bedrock and the "azure" ones Azure OpenAI (with
/// the fakes' test credentials, which the demo config defaults to), so the
/// three-cloud table is real end to end; the private ones are vLLM-style.
fn fake_cloud(name: &str) -> switchyard_fake_replica::FakeProtocol {
    use switchyard_fake_replica::FakeProtocol;
    if name.starts_with("aws-") {
        FakeProtocol::bedrock()
    } else if name.starts_with("azure-") {
        FakeProtocol::azure()
    } else {
        FakeProtocol::OpenAi
    }
}
