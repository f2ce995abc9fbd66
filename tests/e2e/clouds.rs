//! Issue 6: upstream TLS, the managed-cloud protocols against fake clouds
//! that check credentials as the real ones do, cost accounting and secret
//! redaction.

mod azure;
mod bedrock;
mod costs;
mod sagemaker;
mod secrets;
mod tls;

use std::collections::HashMap;

use switchyard_fake_replica::{FakeProtocol, FakeReplica, ReplicaConfig};
use switchyard_gateway::Running;
use tokio::net::TcpListener;

/// `${URL}`, `${AK}`, `${SK}` for an AWS-signed replica: the fake's test
/// access key, and `secret` (the right one, or a wrong one).
pub fn aws_vars(url: String, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("URL", url),
        ("AK", switchyard_fake_replica::TEST_AWS_ACCESS_KEY_ID.into()),
        ("SK", secret.into()),
    ]
}

/// Starts a gateway from `yaml` with `${NAME}` taken from `vars`.
pub async fn start(yaml: &str, vars: &[(&str, String)]) -> Running {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let config = switchyard_config::load_str(yaml, &|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("config: {e}"));
    let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    switchyard_gateway::start_on(config, data, admin).unwrap()
}

/// A fake replica speaking `protocol`.
pub async fn fake(name: &str, protocol: FakeProtocol, tokens: u32) -> FakeReplica {
    FakeReplica::start(ReplicaConfig {
        name: name.to_owned(),
        tokens,
        protocol,
        ..ReplicaConfig::default()
    })
    .await
    .unwrap()
}

/// The concatenated `delta.content` of an SSE chat answer, its
/// `finish_reason`, and the usage chunk, if any.
pub fn stream_parts(events: &[String]) -> (String, Option<String>, Option<serde_json::Value>) {
    let mut text = String::new();
    let mut finish = None;
    let mut usage = None;
    for e in events.iter().filter(|e| *e != "[DONE]") {
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_owned());
        }
        if v["usage"].is_object() {
            usage = Some(v["usage"].clone());
        }
    }
    (text, finish, usage)
}
