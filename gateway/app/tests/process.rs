//! The `switchyard run` process as an operator drives it: SIGHUP reloads,
//! and a binary upgrade hands the port to a new process without refusing a
//! connection. Everything on 127.0.0.1, bounded in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// These tests drive OS processes from plain threads (no async runtime to
// block), so std's sleep is the right tool here.
#![allow(clippy::disallowed_methods)]
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchyard_fake_replica::{FakeReplica, ReplicaConfig};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config_file(tag: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-proc-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("switchyard.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(config: &PathBuf, admin: u16, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(["run", "--config"])
        .arg(config)
        .args(extra)
        .env("ADMIN", format!("127.0.0.1:{admin}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Proc(cmd.spawn().unwrap())
}

fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &p.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {out:?}")))?;
    Ok((status, out))
}

fn wait_ready(admin: u16) {
    let addr: SocketAddr = ([127, 0, 0, 1], admin).into();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok((200, _)) = http(addr, "GET", "/readyz", "") {
            return;
        }
        assert!(Instant::now() < deadline, "gateway never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn generation(admin: u16) -> (u64, String) {
    let (status, text) = http(([127, 0, 0, 1], admin).into(), "GET", "/admin/config", "").unwrap();
    assert_eq!(status, 200);
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    (
        v["generation"].as_u64().unwrap(),
        v["last_error"]["errors"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

const CONFIG: &str = r#"
server:
  listen: "127.0.0.1:DATA"
  admin_listen: ${ADMIN}
  limits: { shutdown_overlap_ms: 300, shutdown_grace_ms: 5000 }
clouds: { c: { provider: private } }
models:
  - name: chat
    versions: [{ name: v1, weight: 100 }]
replicas:
  - { id: r1, model: chat, cloud: c, url: "REPLICA", max_concurrency: 64 }
"#;

#[test]
fn sighup_reloads_the_file_and_a_broken_file_keeps_the_old_config() {
    let admin = free_port();
    let text = CONFIG
        .replace("DATA", &free_port().to_string())
        .replace("REPLICA", "http://127.0.0.1:9");
    let path = config_file("hup", &text);
    let gw = spawn(&path, admin, &["--no-watch"]);
    wait_ready(admin);
    assert_eq!(generation(admin).0, 1);

    std::fs::write(
        &path,
        text.replace("max_concurrency: 64", "max_concurrency: 32"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        generation(admin).0,
        1,
        "--no-watch: saving alone reloads nothing"
    );
    signal(&gw, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while generation(admin).0 != 2 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }

    std::fs::write(
        &path,
        text.replace("max_concurrency: 64", "max_concurrency: -1"),
    )
    .unwrap();
    signal(&gw, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (generation, field) = generation(admin);
        if !field.is_empty() {
            assert_eq!(generation, 2, "the refused config must not be applied");
            assert_eq!(field, "replicas[0].max_concurrency");
            break;
        }
        assert!(Instant::now() < deadline, "the refusal was never recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_ready(admin);
}

#[test]
fn an_upgrade_hands_the_port_to_a_new_process_without_refusing_connections() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let replica = rt
        .block_on(FakeReplica::start(ReplicaConfig::default()))
        .unwrap();
    let data = free_port();
    let (admin_old, admin_new) = (free_port(), free_port());
    let text = CONFIG
        .replace("DATA", &data.to_string())
        .replace("REPLICA", &replica.url());
    let path = config_file("upgrade", &text);
    let old = spawn(&path, admin_old, &[]);
    wait_ready(admin_old);

    // Clients keep opening fresh connections through the whole handover.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
            std::thread::spawn(move || {
                let body = r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#;
                let addr: SocketAddr = ([127, 0, 0, 1], data).into();
                let mut errors = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match http(addr, "POST", "/v1/chat/completions", body) {
                        Ok((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                        other => {
                            errors.push(format!("{:?}", other.map(|(s, _)| s)));
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                errors
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // Without --takeover the port in use is refused, naming the way out.
    let refused = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["run", "--config"])
        .arg(&path)
        .env("ADMIN", format!("127.0.0.1:{admin_new}"))
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a second gateway must not silently share the port"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("another process listens there") && stderr.contains("--takeover"),
        "{stderr}"
    );

    let new = spawn(&path, admin_new, &["--takeover"]);
    wait_ready(admin_new);
    let before = ok.load(Ordering::Relaxed);
    signal(&old, "-TERM");
    let mut old = old;
    let deadline = Instant::now() + Duration::from_secs(10);
    while old.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the old process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(old.0.wait().unwrap().success(), "old process exit status");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let errors: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let after = ok.load(Ordering::Relaxed);
    assert!(
        before > 20 && after > before + 20,
        "too little traffic: {before} then {after}"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests: {errors:?}"
    );
    drop(new);
    rt.block_on(replica.shutdown());
}
