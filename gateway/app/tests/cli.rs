//! The `switchyard` binary's `check` subcommand, run as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn switchyard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_accepts_the_shipped_examples() {
    for example in ["minimal.yaml", "three-clouds.yaml"] {
        let path = format!("{}/../../examples/{example}", env!("CARGO_MANIFEST_DIR"));
        let (ok, stdout, stderr) = switchyard(&["check", &path]);
        assert!(ok, "{example}: {stderr}");
        assert!(stdout.contains(": ok ("), "{stdout}");
    }
}

#[test]
fn the_images_default_config_needs_a_client_key_and_takes_it_from_the_env() {
    let path = format!(
        "{}/../../examples/container.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", &path])
        .env_remove("SWITCHYARD_API_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("SWITCHYARD_API_KEY"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", &path])
        .env("SWITCHYARD_API_KEY", "sk-".to_owned() + &"x".repeat(40))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_shows_each_replicas_resume_strategy() {
    let path = write(
        "resume.yaml",
        r#"
clouds: { c: { provider: private } }
models:
  - name: chat
    versions: [{ name: v1, weight: 100 }]
replicas:
  - { id: r1, model: chat, cloud: c, url: "http://127.0.0.1:1", resume: token_ids }
  - { id: r2, model: chat, cloud: c, url: "http://127.0.0.1:2", resume: prefill }
  - { id: r3, model: chat, cloud: c, url: "http://127.0.0.1:3" }
"#,
    );
    let (ok, stdout, stderr) = switchyard(&["check", path.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("mid-stream resume: r1 token_ids, r2 prefill\n"),
        "{stdout}"
    );
}

#[test]
fn check_rejects_a_bad_config_naming_every_field() {
    let path = write(
        "bad.yaml",
        r#"
clouds: { c: { provider: moon } }
models:
  - name: chat
    versions: [{ name: v1, weight: 140 }]
replicas:
  - { id: r1, model: chat, cloud: c, url: "http://127.0.0.1:1" }
  - { id: r1, model: nope, cloud: c, url: "gopher://x" }
"#,
    );
    let (ok, _stdout, stderr) = switchyard(&["check", path.to_str().unwrap()]);
    assert!(!ok, "exit code must be non-zero");
    for needle in [
        "clouds.c.provider: unknown provider `moon`",
        "models[0].versions[0].weight: must be 0..=100, got 140",
        "replicas[1].id: duplicate replica id `r1`",
        "replicas[1].model: unknown model group `nope`",
        "replicas[1].url: scheme `gopher` is not allowed",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[test]
fn check_reports_a_missing_file_and_unknown_fields() {
    let (ok, _, stderr) = switchyard(&["check", "/nonexistent/switchyard.yaml"]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot read config file /nonexistent/switchyard.yaml"),
        "{stderr}"
    );

    let path = write("typo.yaml", "server: { lisen: 1.2.3.4:5 }\nmodels: []\n");
    let (ok, _, stderr) = switchyard(&["check", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("server.lisen: unknown field `lisen`"),
        "{stderr}"
    );
}

/// What `switchyard check` says of `yaml`, with no AWS variables in its
/// environment.
fn check_without_aws(name: &str, yaml: &str) -> (bool, String) {
    let path = write(name, yaml);
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", path.to_str().unwrap()])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_fails_where_a_request_would_credentials_ca_files_and_secrets() {
    let head = "clouds: { aws: { provider: aws, region: us-east-1 }, dc: { provider: private } }\n\
                models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]\nreplicas:\n";
    // Bedrock with no keys anywhere: every request would fail to sign.
    let (ok, stderr) = check_without_aws(
        "bedrock.yaml",
        &format!(
            "{head}  - {{ id: r, model: m, cloud: aws, protocol: bedrock, \
             url: \"https://bedrock-runtime.us-east-1.amazonaws.com\" }}\n"
        ),
    );
    assert!(!ok);
    assert!(
        stderr.contains("replicas[0].aws: no AWS credentials"),
        "{stderr}"
    );

    // A CA file that is not a certificate: TLS to the replica would fail.
    let ca = write(
        "not-a-ca.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    let (ok, stderr) = check_without_aws(
        "ca.yaml",
        &format!(
            "{head}  - {{ id: r, model: m, cloud: dc, url: \"https://10.0.0.1:8443\", \
             tls: {{ ca_file: \"{}\" }} }}\n",
            ca.display()
        ),
    );
    assert!(!ok);
    assert!(stderr.contains("replicas[0].tls.ca_file"), "{stderr}");

    // A secret that cannot be a header value: it would be sent as nothing.
    let (ok, stderr) = check_without_aws(
        "secret.yaml",
        &format!(
            "{head}  - {{ id: r, model: m, cloud: dc, url: \"http://10.0.0.1:8000\", \
             auth: {{ bearer: \"sk-first\\nsk-second\" }} }}\n"
        ),
    );
    assert!(!ok);
    assert!(stderr.contains("replicas[0].auth"), "{stderr}");
    assert!(
        !stderr.contains("sk-first"),
        "the secret is never printed: {stderr}"
    );
}

#[test]
fn check_refuses_a_blank_admin_token() {
    let path = write(
        "blank-token.yaml",
        "server: { admin_token: \"  \" }\nclouds: { c: { provider: private } }\n\
         models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]\n\
         replicas: [{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }]\n",
    );
    let (ok, _, stderr) = switchyard(&["check", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("server.admin_token: must not be empty or only whitespace"),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_public_listener_without_client_auth() {
    let body = "clouds: { c: { provider: private } }\n\
                models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]\n\
                replicas: [{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }]\n";
    let path = write(
        "public.yaml",
        &format!("server: {{ listen: 0.0.0.0:8080 }}\n{body}"),
    );
    let (ok, _, stderr) = switchyard(&["check", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "server.listen: 0.0.0.0:8080 is not a loopback address and no client authentication"
        ),
        "{stderr}"
    );
    let path = write(
        "public-open.yaml",
        &format!("server: {{ listen: 0.0.0.0:8080, allow_unauthenticated: true }}\n{body}"),
    );
    let (ok, _, stderr) = switchyard(&["check", path.to_str().unwrap()]);
    assert!(ok, "{stderr}");
}
