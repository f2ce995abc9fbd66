//! `switchyard-demo`: the gateway plus seven simulated replicas in three
//! clouds, in one process, on loopback; no config file needed.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// Run Switchyard with simulated replicas in three clouds.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Data-plane address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Admin API address.
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// Do not drive synthetic traffic (nor inject demo faults).
    #[arg(long)]
    no_traffic: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = switchyard_ops::telemetry::init(false, None);
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
    match runtime.block_on(switchyard_demo::run(
        cli.listen,
        cli.admin_listen,
        !cli.no_traffic,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
