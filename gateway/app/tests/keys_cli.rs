//! `switchyard keys` against a running `switchyard run`: create prints the
//! key once, the state file next to the config holds only its hash, list
//! and revoke work, and a corrupt state file stops the gateway at start
//! with the file's name.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Processes driven from plain threads: std's sleep is the right tool here.
#![allow(clippy::disallowed_methods)]
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use switchyard_fake_replica::{FakeReplica, ReplicaConfig};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(config: &Path, stderr: Stdio) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["run", "--no-watch", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    Proc(child)
}

fn keys(admin: u16, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("keys")
        .args(args)
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .output()
        .unwrap()
}

/// Status of one request on a fresh connection.
fn status(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let body = r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#;
    let auth = auth.map_or(String::new(), |k| format!("authorization: Bearer {k}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.get(9..12)?.parse().ok()
}

fn wait_ready(admin: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(([127, 0, 0, 1], admin).into(), "GET", "/readyz", None) != Some(200) {
        assert!(Instant::now() < deadline, "gateway never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn keys_made_with_the_cli_work_persist_next_to_the_config_and_revoke() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let replica = rt
        .block_on(FakeReplica::start(ReplicaConfig::default()))
        .unwrap();
    let (data, admin) = (free_port(), free_port());
    let dir: PathBuf =
        std::env::temp_dir().join(format!("switchyard-keys-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gw.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{ listen: \"127.0.0.1:{data}\", admin_listen: \"127.0.0.1:{admin}\" }}\n\
             clouds: {{ c: {{ provider: private }} }}\n\
             models: [{{ name: chat, versions: [{{ name: v1, weight: 100 }}] }}]\n\
             replicas: [{{ id: r1, model: chat, cloud: c, url: \"{}\" }}]\n\
             tenants: [{{ name: team, keys: [{{ id: c, key: config-key }}] }}]\n",
            replica.url()
        ),
    )
    .unwrap();
    let gw = run(&config, Stdio::inherit());
    wait_ready(admin);
    let data: SocketAddr = ([127, 0, 0, 1], data).into();

    let made = keys(admin, &["create", "--tenant", "team", "--name", "ci"]);
    assert!(made.status.success(), "{made:?}");
    let made: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let (key, id) = (made["key"].as_str().unwrap(), made["id"].as_str().unwrap());
    let state = std::fs::read_to_string(dir.join("gw.yaml.keys.json")).unwrap();
    assert!(state.contains(id) && !state.contains(&key[6..]), "{state}");
    assert_eq!(
        status(data, "POST", "/v1/chat/completions", Some(key)),
        Some(200)
    );

    let listed = keys(admin, &["list"]);
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stdout).contains(id));
    let refused = keys(admin, &["create", "--tenant", "nobody"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no tenant `nobody`"));

    assert!(keys(admin, &["revoke", id]).status.success());
    assert_eq!(
        status(data, "POST", "/v1/chat/completions", Some(key)),
        Some(401)
    );
    drop(gw);

    // A corrupt state file: the gateway does not start, and says which file.
    std::fs::write(dir.join("gw.yaml.keys.json"), "{oops").unwrap();
    let mut gw = run(&config, Stdio::piped());
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(code) = gw.0.try_wait().unwrap() {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "a corrupt state file did not stop the start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!code.success());
    let mut err = String::new();
    gw.0.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("gw.yaml.keys.json"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
