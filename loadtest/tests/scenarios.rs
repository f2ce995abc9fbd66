//! Scenario runs as CI tests: the real binaries, fake replicas as child
//! processes, everything on 127.0.0.1, a few seconds each.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

const LOADTEST: &str = env!("CARGO_BIN_EXE_switchyard-loadtest");

/// The `switchyard` binary of this build; built here if `cargo test` was run
/// for this package alone.
fn gateway_bin() -> PathBuf {
    let bin = PathBuf::from(LOADTEST).with_file_name("switchyard");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "switchyard-gateway", "--bin", "switchyard"])
            .status()
            .unwrap();
        assert!(status.success(), "building the gateway failed");
    }
    bin
}

fn scenario(file: &str) -> std::process::Output {
    let out = std::env::temp_dir().join(format!("switchyard-scn-{}-{file}", std::process::id()));
    Command::new(LOADTEST)
        .args(["scenario", file, "--no-progress", "--out"])
        .arg(&out)
        .arg("--gateway-bin")
        .arg(gateway_bin())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn steady_state_scenario_passes_with_nothing_failed() {
    let out = scenario("scenarios/steady.yaml");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("scenario `steady` passed"), "{stderr}");
}

#[test]
fn a_breached_assertion_fails_the_run() {
    let file = std::env::temp_dir().join(format!("switchyard-failing-{}.yaml", std::process::id()));
    std::fs::write(
        &file,
        r#"
name: always-503
replicas: [{ name: r1, args: ["--fault", '{"mode":"error","status":503}'] }]
gateway:
  config: |
    server: { listen: "${SWITCHYARD_LISTEN}", admin_listen: "${SWITCHYARD_ADMIN_LISTEN}" }
    clouds: { c: { provider: private } }
    models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
    replicas: [{ id: r1, model: m, cloud: c, url: "${R1_URL}" }]
load: { rate: 50, duration_secs: 1, mix: [{ endpoint: chat, model: m }] }
assert: { max_failed: 0 }
"#,
    )
    .unwrap();
    let out = scenario(file.to_str().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ASSERTION FAILED"), "{stderr}");
    assert!(
        stderr.contains("http_503"),
        "the verdicts name the status: {stderr}"
    );
}

/// The hot-swap promise under load: seven config changes (replicas removed
/// and re-added, a canary version appearing, weights moving, limits
/// changing) while streams and plain requests flow; nothing may fail.
#[test]
fn config_swaps_under_load_fail_nothing() {
    let out = scenario("scenarios/hot-swap.yaml");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("scenario `hot-swap` passed"), "{stderr}");
}
