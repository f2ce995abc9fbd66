//! `switchyard-loadtest scenario FILE.yaml`: start fake replicas and the
//! gateway, drive load, fire timed events (kill, restart, faults, config
//! swaps), then check the scenario's assertions. Exit code 1 when one fails.
//!
//! Results (JSON, plot with the events marked, every process's log) go to
//! `--out`, by default `loadtest/results/<name>-<time>/`.

pub mod procs;
pub mod spec;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use procs::{Bins, Procs};
use spec::{Assertions, Scenario};

/// Flags of `scenario`.
#[derive(clap::Args)]
pub struct ScenarioArgs {
    /// Scenario file.
    pub file: PathBuf,
    /// Results folder (default `loadtest/results/<name>-<time>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The `switchyard` binary (default: next to this one).
    #[arg(long)]
    pub gateway_bin: Option<PathBuf>,
    /// Show no progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Loads a scenario file, naming the field at fault on error.
pub fn load(path: &Path) -> anyhow::Result<Scenario> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let de = serde_yaml_ng::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))
}

/// Runs a scenario; `Ok(failures)` lists breached assertions (empty = pass).
pub async fn run(args: ScenarioArgs) -> anyhow::Result<Vec<String>> {
    let scn = load(&args.file)?;
    let me = std::env::current_exe().context("locating switchyard-loadtest")?;
    let gateway = match args.gateway_bin {
        Some(p) => p,
        None => me.with_file_name("switchyard"),
    };
    if !gateway.exists() {
        bail!(
            "gateway binary {} not found: build it (cargo build -p switchyard-gateway) or pass --gateway-bin",
            gateway.display()
        );
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("loadtest/results/{}-{stamp}", scn.name)));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    eprintln!("scenario `{}`: {}", scn.name, scn.description.trim());

    let mut procs = Procs::start(
        &scn,
        Bins {
            loadtest: me,
            gateway,
        },
        &out,
    )
    .await?;
    let result = drive(&scn, &mut procs, &out, !args.no_progress).await;
    procs.stop().await;
    let report = result?;
    let failures = check(&scn.assertions, &report);
    for f in &failures {
        eprintln!("ASSERTION FAILED: {f}");
    }
    if failures.is_empty() {
        eprintln!(
            "scenario `{}` passed; results in {}",
            scn.name,
            out.display()
        );
    }
    Ok(failures)
}

async fn drive(
    scn: &Scenario,
    procs: &mut Procs,
    out: &Path,
    progress: bool,
) -> anyhow::Result<crate::run::LoadReport> {
    let spec = crate::run::spec_from_scenario(&scn.load, &procs.gateway_url, progress)?;
    let start = Instant::now();
    let load = tokio::spawn(crate::run::run_load(spec));
    let mut events: Vec<&spec::Event> = scn.events.iter().collect();
    events.sort_by(|a, b| a.at_secs.total_cmp(&b.at_secs));
    let mut marks: Vec<(Duration, String)> = Vec::new();
    for ev in events {
        let at = Duration::from_secs_f64(ev.at_secs.max(0.0));
        tokio::time::sleep_until((start + at).into()).await;
        if load.is_finished() {
            break;
        }
        let label = ev.action.label();
        eprintln!("[{:>5.1}s] {label}", start.elapsed().as_secs_f64());
        procs
            .act(&ev.action)
            .await
            .with_context(|| format!("event `{label}`"))?;
        marks.push((start.elapsed(), label));
    }
    let report = load.await.context("load task panicked")??;
    println!("{}", report.summary());
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&report.to_json())?,
    )?;
    crate::run::plot(&report, &marks, &out.join("latency.svg"))?;
    Ok(report)
}

fn check(a: &Assertions, r: &crate::run::LoadReport) -> Vec<String> {
    let mut failures = Vec::new();
    let (total, failed, truncations, p99) =
        (r.total(), r.failed(), r.silent_truncations(), r.p99_ms());
    if let Some(max) = a.max_failed
        && failed > max
    {
        failures.push(format!(
            "{failed} requests failed (max_failed: {max}); verdicts: {}",
            r.verdicts_line()
        ));
    }
    if let Some(max) = a.max_silent_truncations
        && truncations > max
    {
        failures.push(format!(
            "{truncations} silent truncations (max_silent_truncations: {max})"
        ));
    }
    if let Some(min) = a.min_requests
        && total < min
    {
        failures.push(format!(
            "only {total} requests measured (min_requests: {min})"
        ));
    }
    if let Some(max) = a.max_p99_ms
        && p99 > max
    {
        failures.push(format!("p99 {p99:.2} ms (max_p99_ms: {max})"));
    }
    if let Some(want) = &a.ok_per_minute {
        let got = r.ok as f64 * 60.0 / r.seconds.max(1e-9);
        let off = (got - want.expect).abs() / want.expect * 100.0;
        eprintln!(
            "ok per minute: {got:.1} (expected {}, off by {off:.2} %)",
            want.expect
        );
        if off > want.tolerance_pct {
            failures.push(format!(
                "{got:.1} complete answers per minute, {off:.2} % off {} (ok_per_minute.tolerance_pct: {})",
                want.expect, want.tolerance_pct
            ));
        }
    }
    failures
}
