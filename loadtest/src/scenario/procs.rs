//! The processes a scenario runs: fake replicas and the gateway, each a real
//! child process (so `kill` is a real SIGKILL), logging into the results folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::spec::{Action, ReplicaSpec, Scenario};

/// Where the binaries are.
pub struct Bins {
    /// `switchyard-loadtest` (runs the replicas).
    pub loadtest: PathBuf,
    /// `switchyard` (the gateway).
    pub gateway: PathBuf,
}

struct Replica {
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
}

/// Everything a running scenario started.
pub struct Procs {
    dir: PathBuf,
    bins: Bins,
    replicas: BTreeMap<String, Replica>,
    gateway: Option<Child>,
    config_path: PathBuf,
    /// Data-plane URL of the gateway.
    pub gateway_url: String,
}

/// The environment variable carrying replica `name`'s URL.
pub fn url_var(name: &str) -> String {
    format!("{}_URL", name.to_uppercase().replace('-', "_"))
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

async fn wait_port(port: u16, what: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("{what} did not open 127.0.0.1:{port} within 5 s (see its log)")
}

fn replica_args(spec: &ReplicaSpec, port: u16) -> Vec<String> {
    let mut args = vec![
        "replica".into(),
        "--port".into(),
        port.to_string(),
        "--name".into(),
        spec.name.clone(),
        "--model".into(),
        spec.model.clone(),
        "--latency-ms".into(),
        spec.latency_ms.to_string(),
        "--tokens".into(),
        spec.tokens.to_string(),
        "--inter-token-ms".into(),
        spec.inter_token_ms.to_string(),
    ];
    args.extend(spec.args.iter().cloned());
    args
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<(Stdio, Stdio)> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .with_context(|| format!("opening {name}.log"))?;
    Ok((Stdio::from(f.try_clone()?), Stdio::from(f)))
}

impl Procs {
    /// Starts every replica, then the gateway, and waits until it is ready.
    pub async fn start(scn: &Scenario, bins: Bins, dir: &Path) -> anyhow::Result<Self> {
        let mut procs = Self {
            dir: dir.to_owned(),
            bins,
            replicas: BTreeMap::new(),
            gateway: None,
            config_path: dir.join("gateway.yaml"),
            gateway_url: String::new(),
        };
        for spec in &scn.replicas {
            let port = free_port()?;
            let args = replica_args(spec, port);
            procs.replicas.insert(
                spec.name.clone(),
                Replica {
                    args,
                    port,
                    child: None,
                },
            );
            procs.start_replica(&spec.name).await?;
        }
        std::fs::write(&procs.config_path, &scn.gateway.config).context("writing gateway.yaml")?;
        let (listen, admin) = (free_port()?, free_port()?);
        let (out, err) = log_file(dir, "gateway")?;
        let mut cmd = Command::new(&procs.bins.gateway);
        cmd.arg("run").arg("--config").arg(&procs.config_path);
        cmd.env("SWITCHYARD_LISTEN", format!("127.0.0.1:{listen}"));
        cmd.env("SWITCHYARD_ADMIN_LISTEN", format!("127.0.0.1:{admin}"));
        for (name, r) in &procs.replicas {
            cmd.env(url_var(name), format!("http://127.0.0.1:{}", r.port));
        }
        cmd.env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        );
        let child = cmd
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", procs.bins.gateway.display()))?;
        procs.gateway = Some(child);
        procs.gateway_url = format!("http://127.0.0.1:{listen}");
        wait_port(listen, "the gateway").await?;
        wait_port(admin, "the gateway's admin listener").await?;
        Ok(procs)
    }

    async fn start_replica(&mut self, name: &str) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        let r = self
            .replicas
            .get_mut(name)
            .with_context(|| format!("no replica `{name}`"))?;
        if r.child.is_some() {
            bail!("replica `{name}` is already running");
        }
        let (out, err) = log_file(&dir, name)?;
        let child = Command::new(&self.bins.loadtest)
            .args(&r.args)
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bins.loadtest.display()))?;
        r.child = Some(child);
        wait_port(r.port, &format!("replica `{name}`")).await
    }

    /// Carries out one scenario action.
    pub async fn act(&mut self, action: &Action) -> anyhow::Result<()> {
        match action {
            Action::Kill { replica } => {
                let r = self
                    .replicas
                    .get_mut(replica)
                    .with_context(|| format!("no replica `{replica}`"))?;
                let mut child = r
                    .child
                    .take()
                    .with_context(|| format!("`{replica}` is not running"))?;
                child.kill().await.context("killing replica")?;
                Ok(())
            }
            Action::Restart { replica } => self.start_replica(replica).await,
            Action::Fault { replica, fault } => {
                self.control(replica, http::Method::PUT, fault.to_string())
                    .await
            }
            Action::ClearFault { replica } => {
                self.control(replica, http::Method::DELETE, String::new())
                    .await
            }
            Action::Sighup => self.signal_gateway(Signal::SIGHUP),
            Action::SwapConfig { config } => {
                std::fs::write(&self.config_path, config).context("writing gateway.yaml")?;
                self.signal_gateway(Signal::SIGHUP)
            }
        }
    }

    async fn control(
        &self,
        replica: &str,
        method: http::Method,
        body: String,
    ) -> anyhow::Result<()> {
        let r = self
            .replicas
            .get(replica)
            .with_context(|| format!("no replica `{replica}`"))?;
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1:{}/_control/fault", r.port))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
            .await
            .context("replica control endpoint timed out")??;
        if !resp.status().is_success() {
            bail!(
                "replica `{replica}` refused the fault: HTTP {}",
                resp.status()
            );
        }
        Ok(())
    }

    fn signal_gateway(&self, sig: Signal) -> anyhow::Result<()> {
        let pid = self
            .gateway
            .as_ref()
            .and_then(Child::id)
            .context("the gateway is not running")?;
        kill(Pid::from_raw(pid as i32), sig).context("signalling the gateway")
    }

    /// Stops the gateway gracefully (SIGTERM, 10 s), then every replica.
    pub async fn stop(&mut self) {
        if let Some(mut gw) = self.gateway.take() {
            let _ = self.signal_gateway_pid(&gw, Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(10), gw.wait())
                .await
                .is_err()
            {
                let _ = gw.kill().await;
            }
        }
        for r in self.replicas.values_mut() {
            if let Some(mut c) = r.child.take() {
                let _ = c.kill().await;
            }
        }
    }

    fn signal_gateway_pid(&self, gw: &Child, sig: Signal) -> anyhow::Result<()> {
        let pid = gw.id().context("already exited")?;
        kill(Pid::from_raw(pid as i32), sig).context("signalling the gateway")
    }
}
