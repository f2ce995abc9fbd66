//! The `switchyard` binary: `run`, `check` and `demo`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// Switchyard: one endpoint in front of model replicas in many clouds.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
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
    /// Serve with a config file.
    Run {
        /// Path to the YAML config.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file and list every problem; exit code 1 if any.
    Check {
        /// Path to the YAML config.
        file: PathBuf,
    },
    /// Exit 0 when the admin listener at ADDR answers `/readyz` with 200
    /// (for container HEALTHCHECKs: the runtime image has no curl).
    Probe {
        /// Admin address.
        #[arg(default_value = "127.0.0.1:9090")]
        admin: SocketAddr,
    },
    /// Run the gateway with simulated replicas in three clouds; no config needed.
    Demo {
        /// Data-plane address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Admin API address.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin_listen: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Probe { admin } => probe(admin),
        Command::Run { config } => run_async(async move {
            let config = switchyard_config::load_file(&config)?;
            let running = switchyard_gateway::start(config).await?;
            switchyard_gateway::signal::shutdown_requested().await;
            tracing::info!("shutdown requested");
            running.shutdown().await?;
            Ok(())
        }),
        Command::Demo {
            listen,
            admin_listen,
        } => run_async(switchyard_gateway::demo::run(listen, admin_listen)),
    }
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

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
