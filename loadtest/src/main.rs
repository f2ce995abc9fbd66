//! `switchyard-loadtest`: the fake replica as a process, and a load generator
//! that understands SSE (time to first token, complete vs truncated streams).

mod compare;
mod plot;
mod replica;
mod run;
mod scenario;

use clap::{Parser, Subcommand};

/// Load tester and fake replica for Switchyard.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a fake model server (OpenAI + KServe v2) until Ctrl-C.
    Replica(replica::ReplicaArgs),
    /// Drive load at a gateway or a replica and report latency.
    Run(run::RunArgs),
    /// Start replicas and a gateway, drive load, fire timed events, check assertions.
    Scenario(scenario::ScenarioArgs),
    /// Several `run --json` reports side by side: lines, markdown, SVG bars.
    Compare(compare::CompareArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Replica(args) => replica::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(run::run(args))
        }
        Command::Scenario(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let failures = rt.block_on(scenario::run(args))?;
            if !failures.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
