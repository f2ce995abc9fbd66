//! A real etcd for tests: `/usr/bin/etcd` on free 127.0.0.1 ports with a
//! data dir of its own, killed (by its PID) and removed on drop. Never the
//! default ports.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd.
pub struct EtcdServer {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

impl EtcdServer {
    /// Starts etcd and waits (≤ 15 s) until it answers.
    pub async fn start() -> Self {
        let (client, peer) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!(
            "switchyard-fleet-etcd-{}-{client}",
            std::process::id()
        ));
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("/usr/bin/etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(&dir)
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("t={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("/usr/bin/etcd starts (scripts/install-deps installs it)");
        let server = Self { child, dir, url };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut c) = server.client().await
                && c.status().await.is_ok()
            {
                return server;
            }
            assert!(Instant::now() < deadline, "etcd did not answer within 15 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new client of this server.
    pub async fn client(&self) -> Result<etcd_client::Client, etcd_client::Error> {
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(3));
        etcd_client::Client::connect([&self.url], Some(opts)).await
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
