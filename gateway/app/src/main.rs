//! The `switchyard` binary: `run`, `check` and `probe`. (The demo is its
//! own binary, `switchyard-demo`: this one links no test double.)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod fleet_cli;

/// Switchyard: one endpoint in front of model replicas in many clouds.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Export traces over OTLP/HTTP to this collector (e.g.
    /// http://127.0.0.1:4318); default: OTEL_EXPORTER_OTLP_ENDPOINT, else off.
    #[arg(long, global = true)]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with a config file, or as one instance of a fleet in etcd.
    Run {
        /// Path to the YAML config.
        #[arg(long, short, required_unless_present = "etcd", conflicts_with = "etcd")]
        config: Option<PathBuf>,
        #[command(flatten)]
        fleet: FleetRun,
        /// Do not reload when the file changes (SIGHUP and
        /// `POST /admin/reload` still do).
        #[arg(long)]
        no_watch: bool,
        /// Share the listen addresses with the gateway already serving
        /// them (a zero-downtime upgrade: then SIGTERM the old one).
        /// Without it, an address in use is an error.
        #[arg(long)]
        takeover: bool,
        /// Where API keys created through `/admin/keys` are kept (hashes
        /// only). Default: the config's path with `.keys.json` appended.
        #[arg(long)]
        keys_file: Option<PathBuf>,
    },
    /// The fleet in etcd: status, apply, weights, promote, rollback.
    Fleet(fleet_cli::FleetArgs),
    /// Validate a config file and list every problem; exit code 1 if any.
    Check {
        /// Path to the YAML config.
        file: PathBuf,
    },
    /// Manage API keys through a running gateway's admin API (the key of
    /// `create` and `rotate` is printed once, in the JSON answer).
    Keys {
        /// Admin address.
        #[arg(long, default_value = "127.0.0.1:9090", global = true)]
        admin: SocketAddr,
        /// Admin token (an operator token for changes).
        #[arg(
            long,
            env = "SWITCHYARD_ADMIN_TOKEN",
            hide_env_values = true,
            global = true
        )]
        token: Option<String>,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Exit 0 when the admin listener at ADDR answers `/readyz` with 200
    /// (for container HEALTHCHECKs: the runtime image has no curl).
    Probe {
        /// Admin address.
        #[arg(default_value = "127.0.0.1:9090")]
        admin: SocketAddr,
    },
}

/// `run --etcd`: config and control state from etcd.
#[derive(clap::Args)]
struct FleetRun {
    /// etcd endpoint to read the config from (instead of `--config`).
    #[arg(long)]
    etcd: Option<String>,
    /// Key prefix of the fleet.
    #[arg(long, default_value = "/switchyard")]
    prefix: String,
    /// This instance's id in `PREFIX/instances/` (default: host name and PID).
    #[arg(long)]
    instance_id: Option<String>,
    /// TTL of the status key's lease: a dead instance's status goes after it.
    #[arg(long, default_value_t = 10)]
    lease_ttl_s: u64,
    /// Data listen address of this instance (overrides `server.listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin listen address of this instance (overrides `server.admin_listen`).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
}

#[derive(Subcommand)]
enum KeysAction {
    /// Every key: id, prefix, tenant, name, state (never a key).
    List,
    /// A new key for a tenant defined in the config.
    Create {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// A label (e.g. `ci`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a key: it fails from the next request on.
    Revoke {
        /// The key's id (`key_...`).
        id: String,
    },
    /// Replace a key with a new one.
    Rotate {
        /// The key's id.
        id: String,
        /// Keep the old key working this many seconds (default: revoke now).
        #[arg(long)]
        grace_s: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = init_logging(cli.log_format, cli.otlp_endpoint.as_deref());
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Probe { admin } => probe(admin),
        Command::Keys {
            admin,
            token,
            action,
        } => keys(admin, token.as_deref(), action),
        Command::Fleet(args) => {
            let mut ok = true;
            let code = run_async(async {
                ok = fleet_cli::run(args).await?;
                Ok(())
            });
            if ok { code } else { ExitCode::FAILURE }
        }
        Command::Run {
            config: None,
            fleet,
            takeover,
            ..
        } => run_async(run_fleet(fleet, takeover)),
        Command::Run {
            config: Some(config),
            no_watch,
            takeover,
            keys_file,
            fleet: _,
        } => run_async(async move {
            let path = config;
            let config = switchyard_config::load_file(&path)?;
            let running = if takeover {
                switchyard_gateway::start_takeover(config).await?
            } else {
                switchyard_gateway::start(config).await?
            };
            let keys_file = keys_file.unwrap_or_else(|| {
                let mut name = path.clone().into_os_string();
                name.push(".keys.json");
                PathBuf::from(name)
            });
            match running.open_keys(&keys_file) {
                Ok(n) => tracing::info!(file = %keys_file.display(), keys = n, "runtime API keys"),
                Err(e) => {
                    running.shutdown().await?;
                    return Err(e.into());
                }
            }
            running.set_source(&path);
            // Reload triggers: the file changing on disk, and SIGHUP.
            let _watch = if no_watch {
                None
            } else {
                Some(running.watch_file(&path)?)
            };
            #[cfg(unix)]
            running.reload_on_sighup()?;
            switchyard_gateway::signal::shutdown_requested().await;
            tracing::info!("shutdown requested");
            running.shutdown().await?;
            Ok(())
        }),
    }
}

/// `run --etcd`: serve the fleet's document, follow its changes.
async fn run_fleet(args: FleetRun, takeover: bool) -> anyhow::Result<()> {
    let endpoint = args.etcd.unwrap_or_default();
    let options = switchyard_fleet::etcd::FleetOptions {
        endpoint,
        prefix: args.prefix,
        instance_id: args.instance_id.unwrap_or_else(default_instance_id),
        lease_ttl: std::time::Duration::from_secs(args.lease_ttl_s.max(2)),
    };
    let mut initial = switchyard_fleet::etcd::load(&options).await.map_err(|e| {
        anyhow::anyhow!("cannot start from etcd (there is no previous config to serve): {e}")
    })?;
    if let Some(a) = args.listen {
        initial.config.server.listen = a;
    }
    if let Some(a) = args.admin_listen {
        initial.config.server.admin_listen = a;
    }
    let config = initial.config.clone();
    let running = if takeover {
        switchyard_gateway::start_takeover(config).await?
    } else {
        switchyard_gateway::start(config).await?
    };
    running.join_fleet(initial, options);
    switchyard_gateway::signal::shutdown_requested().await;
    tracing::info!("shutdown requested");
    running.shutdown().await?;
    Ok(())
}

/// `<host>-<pid>`: unique on one host, readable in `fleet status`.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "switchyard".to_owned());
    format!("{host}-{}", std::process::id())
}

fn check(file: &std::path::Path) -> ExitCode {
    match switchyard_config::load_file(file) {
        Ok(c) => {
            println!(
                "{}: ok ({} model groups, {} replicas, {} clouds; hash {})",
                file.display(),
                c.models.len(),
                c.replicas.len(),
                c.clouds.len(),
                &c.hash[..12]
            );
            // How broken streams are continued is declared, not probed:
            // say what was declared, so a typo'd strategy is noticed.
            let resume: Vec<String> = c
                .replicas
                .iter()
                .filter(|r| r.resume != switchyard_config::Resume::None)
                .map(|r| format!("{} {}", r.id, r.resume.as_str()))
                .collect();
            if !resume.is_empty() {
                println!("  mid-stream resume: {}", resume.join(", "));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let errors = e.field_errors();
            eprintln!("{}: {} problem(s)", file.display(), errors.len());
            for err in errors {
                eprintln!("  {err}");
            }
            ExitCode::FAILURE
        }
    }
}

fn keys(admin: SocketAddr, token: Option<&str>, action: KeysAction) -> ExitCode {
    let json = |v: serde_json::Value| Some(v.to_string());
    let (method, path, body) = match action {
        KeysAction::List => ("GET", "/admin/keys".to_owned(), None),
        KeysAction::Create { tenant, name } => (
            "POST",
            "/admin/keys".to_owned(),
            json(serde_json::json!({ "tenant": tenant, "name": name })),
        ),
        KeysAction::Revoke { id } => ("POST", format!("/admin/keys/{id}/revoke"), None),
        KeysAction::Rotate { id, grace_s } => (
            "POST",
            format!("/admin/keys/{id}/rotate"),
            json(serde_json::json!({ "grace_s": grace_s })),
        ),
    };
    match switchyard_gateway::admin_client::call(admin, token, method, &path, body.as_deref()) {
        Ok(a) => {
            let pretty = serde_json::from_str::<serde_json::Value>(&a.body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or(a.body);
            if (200..300).contains(&a.status) {
                println!("{pretty}");
                ExitCode::SUCCESS
            } else {
                eprintln!("{admin}: {} {pretty}", a.status);
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{admin}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(admin: SocketAddr) -> ExitCode {
    use std::io::{Read, Write};
    use std::time::Duration;
    let attempt = || -> std::io::Result<bool> {
        let mut s = std::net::TcpStream::connect_timeout(&admin, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /readyz HTTP/1.0\r\nHost: switchyard\r\n\r\n")?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    match attempt() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("{admin}: not ready");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{admin}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs (and trace export when an OTLP endpoint is set); the returned guard
/// flushes buffered spans when `main` returns.
fn init_logging(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> switchyard_ops::telemetry::Telemetry {
    switchyard_ops::telemetry::init(matches!(format, LogFormat::Json), otlp_endpoint)
}
