//! Credentials never reach logs (at TRACE), errors, admin output or metrics.

use std::io::Write;
use std::sync::{Arc, Mutex};

use switchyard_fake_replica::{FakeProtocol, FakeReplica, ReplicaConfig};
use switchyard_tests::{Http, chat};

use super::start;

const AZURE_KEY: &str = "SENTINEL-azure-key-4c1d";
const BEARER: &str = "SENTINEL-bearer-9e7b";
const AWS_ID: &str = "AKIDSENTINEL77777777";
const AWS_SECRET: &str = "SENTINEL/aws+secret/0f3e";
const AWS_TOKEN: &str = "SENTINEL-session-token-a1b2";
const ADMIN: &str = "SENTINEL-admin-token-5d6e";
const ALL: [&str; 6] = [AZURE_KEY, BEARER, AWS_ID, AWS_SECRET, AWS_TOKEN, ADMIN];

const CONFIG: &str = r#"
server: { admin_token: "${ADMIN}" }
clouds:
  dc: { provider: private }
  az: { provider: azure }
  aws: { provider: aws, region: eu-west-1 }
models:
  - { name: local, versions: [{ name: v1, weight: 100 }] }
  - { name: gpt, versions: [{ name: v1, weight: 100 }] }
  - { name: claude, versions: [{ name: v1, weight: 100 }] }
  - { name: denied, versions: [{ name: v1, weight: 100 }] }
replicas:
  - { id: vllm, model: local, cloud: dc, url: "${VLLM}", auth: { bearer: "${BEARER}" } }
  - { id: azr, model: gpt, cloud: az, url: "${AZ}", protocol: azure_openai,
      azure: { api_version: "2024-06-01" }, auth: { header: api-key, value: "${AZURE_KEY}" } }
  - { id: brk, model: claude, cloud: aws, url: "${BR}", protocol: bedrock,
      aws: { access_key_id: "${AWS_ID}", secret_access_key: "${AWS_SECRET}", session_token: "${AWS_TOKEN}" } }
  - { id: bad, model: denied, cloud: aws, url: "${BR}", protocol: bedrock,
      aws: { access_key_id: "${AWS_ID}", secret_access_key: "${AZURE_KEY}" } }
"#;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn sentinel_credentials_never_appear_in_logs_admin_or_metrics() {
    let logs = Capture::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(::tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    // This test's runtime is single-threaded: the gateway, its pool and the
    // fakes all log on this thread, under this subscriber.
    let _guard = ::tracing::subscriber::set_default(subscriber);

    let fake = |name: &str, protocol| {
        FakeReplica::start(ReplicaConfig {
            name: name.to_owned(),
            protocol,
            ..ReplicaConfig::default()
        })
    };
    let vllm = fake("vllm", FakeProtocol::OpenAi).await.unwrap();
    let az = fake(
        "azr",
        FakeProtocol::AzureOpenAi {
            api_key: AZURE_KEY.into(),
        },
    )
    .await
    .unwrap();
    let br = fake(
        "brk",
        FakeProtocol::Bedrock {
            access_key_id: AWS_ID.into(),
            secret_access_key: AWS_SECRET.into(),
            session_token: Some(AWS_TOKEN.into()),
            region: "eu-west-1".into(),
        },
    )
    .await
    .unwrap();
    let gw = start(
        CONFIG,
        &[
            ("VLLM", vllm.url()),
            ("AZ", az.url()),
            ("BR", br.url()),
            ("BEARER", BEARER.into()),
            ("AZURE_KEY", AZURE_KEY.into()),
            ("AWS_ID", AWS_ID.into()),
            ("AWS_SECRET", AWS_SECRET.into()),
            ("AWS_TOKEN", AWS_TOKEN.into()),
            ("ADMIN", ADMIN.into()),
        ],
    )
    .await;
    let http = Http::default();
    let mut outputs = Vec::new();
    for model in ["local", "gpt", "claude", "denied"] {
        for stream in [false, true] {
            let a = http
                .post(gw.data_addr, "/v1/chat/completions", &chat(model, stream))
                .await;
            let expect = if model == "denied" { 403 } else { 200 };
            assert_eq!(
                a.status,
                expect,
                "{model}: {}",
                String::from_utf8_lossy(&a.body)
            );
            outputs.push(String::from_utf8_lossy(&a.body).into_owned());
        }
    }
    let auth = format!("Bearer {ADMIN}");
    for path in [
        "/admin/config",
        "/admin/replicas",
        "/admin/costs",
        "/metrics",
        "/admin/events",
    ] {
        let a = http
            .call("GET", gw.admin_addr, path, &[("authorization", &auth)], "")
            .await;
        assert_eq!(a.status, 200, "{path}");
        outputs.push(String::from_utf8_lossy(&a.body).into_owned());
    }
    assert!(
        outputs[8].contains("<redacted>"),
        "/admin/config shows that secrets exist"
    );

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    // The capture sees the gateway's request path, at TRACE.
    assert!(
        logs.contains("switchyard::access"),
        "no access log captured:\n{logs}"
    );
    assert!(logs.contains("TRACE"), "no TRACE output captured");
    for sentinel in ALL {
        assert!(!logs.contains(sentinel), "`{sentinel}` in logs:\n{logs}");
        for out in &outputs {
            assert!(!out.contains(sentinel), "`{sentinel}` in an answer: {out}");
        }
    }
}
