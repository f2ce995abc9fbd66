//! What validation resolves beyond the file: AWS keys from the loader's
//! env, CA files parsed, credential files read, header-bound secrets
//! checked. Each failure names its field and never prints a secret.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use crate::{CloudApi, ConfigError, UpstreamAuth, load_str};

const HEAD: &str = "clouds: { aws: { provider: aws, region: us-east-1 }, dc: { provider: private } }\n\
                    models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]\n";

/// A config with one replica whose fields (after `id` and `model`) are `replica`.
fn one(replica: &str) -> String {
    format!("{HEAD}replicas:\n  - {{ id: r, model: m, {replica} }}\n")
}

const BEDROCK: &str =
    "cloud: aws, url: \"https://bedrock-runtime.us-east-1.amazonaws.com\", protocol: bedrock";

fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// Every error line of a refused config.
fn refused(yaml: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    match load_str(yaml, env) {
        Ok(_) => panic!("config was accepted:\n{yaml}"),
        Err(e @ ConfigError::Invalid(_)) => e.to_string(),
        Err(e) => panic!("refused before validation: {e}"),
    }
}

/// A fresh file in the temp dir holding `contents`.
pub(super) fn temp_file(contents: &[u8]) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "sy-config-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, contents).unwrap();
    path
}

pub(super) fn ca_pem() -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn missing_bedrock_credentials_fail_at_the_replicas_aws_field() {
    let err = refused(&one(BEDROCK), &|_| None);
    assert!(err.contains("replicas[0].aws: no AWS credentials"), "{err}");
    assert!(
        err.contains("missing: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    // One variable set: the other is named as missing.
    let err = refused(&one(BEDROCK), &env_of(&[("AWS_ACCESS_KEY_ID", "AKID")]));
    assert!(err.contains("(missing: AWS_SECRET_ACCESS_KEY)"), "{err}");
    // A SageMaker replica is held to the same rule.
    let sagemaker =
        "cloud: aws, url: \"https://s\", protocol: sagemaker, aws: { endpoint_name: e }";
    let err = refused(&one(sagemaker), &|_| None);
    assert!(err.contains("replicas[0].aws: no AWS credentials"), "{err}");
}

#[test]
fn credentials_come_from_the_loaders_env_when_the_file_has_none() {
    let env = env_of(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "secret-from-env"),
        ("AWS_SESSION_TOKEN", "token-from-env"),
    ]);
    let c = load_str(&one(BEDROCK), &env).unwrap();
    let Some(CloudApi::Bedrock(b)) = &c.replicas[0].cloud_api else {
        panic!("not bedrock: {:?}", c.replicas[0].cloud_api);
    };
    assert_eq!(b.credentials.access_key_id.expose(), "AKIDENV");
    assert_eq!(b.credentials.secret_access_key.expose(), "secret-from-env");
    let token = b.credentials.session_token.as_ref().map(|t| t.expose());
    assert_eq!(token, Some("token-from-env"));
    // Keys in the file win, and the env's token is not mixed in.
    let inline = format!("{BEDROCK}, aws: {{ access_key_id: AKIDFILE, secret_access_key: sk }}");
    let c = load_str(&one(&inline), &env).unwrap();
    let Some(CloudApi::Bedrock(b)) = &c.replicas[0].cloud_api else {
        panic!("not bedrock");
    };
    assert_eq!(b.credentials.access_key_id.expose(), "AKIDFILE");
    assert!(b.credentials.session_token.is_none());
    // Rotated keys in the env make a different config (a reload applies them).
    let other = env_of(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "rotated"),
    ]);
    let a = load_str(&one(BEDROCK), &env).unwrap();
    let b = load_str(&one(BEDROCK), &other).unwrap();
    assert_ne!(a.hash, b.hash);
}

#[test]
fn an_env_key_that_is_not_a_header_value_names_the_variable_not_the_value() {
    let env = env_of(&[
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "sk-hidden\n"),
    ]);
    let err = refused(&one(BEDROCK), &env);
    assert!(
        err.contains("replicas[0].aws: AWS_SECRET_ACCESS_KEY") && err.contains("line break"),
        "{err}"
    );
    assert!(!err.contains("sk-hidden"), "{err}");
}

#[test]
fn an_unparsable_ca_file_fails_at_its_field() {
    let not_base64 = temp_file(
        b"-----BEGIN CERTIFICATE-----\n!!!! not base64 ????\n-----END CERTIFICATE-----\n",
    );
    let not_der = temp_file(
        b"-----BEGIN CERTIFICATE-----\nZ2FyYmFnZSBnYXJiYWdl\n-----END CERTIFICATE-----\n",
    );
    let no_cert = temp_file(b"just some text\n");
    for (file, needle) in [
        (&not_base64, "not a valid PEM file"),
        (&not_der, "certificate 1 of 1"),
        (&no_cert, "holds no PEM certificate"),
    ] {
        let replica = format!(
            "cloud: dc, url: \"https://h\", tls: {{ ca_file: \"{}\" }}",
            file.display()
        );
        let err = refused(&one(&replica), &|_| None);
        assert!(
            err.contains("replicas[0].tls.ca_file: ") && err.contains(needle),
            "{needle}: {err}"
        );
        std::fs::remove_file(file).unwrap();
    }
}

#[test]
fn a_valid_ca_file_is_parsed_into_trust_anchors() {
    let file = temp_file(format!("{}{}", ca_pem(), ca_pem()).as_bytes());
    let replica = format!(
        "cloud: dc, url: \"https://h\", tls: {{ ca_file: \"{}\" }}",
        file.display()
    );
    let a = load_str(&one(&replica), &|_| None).unwrap();
    let tls = a.replicas[0].tls.as_ref().unwrap();
    assert_eq!(tls.ca_file, file);
    assert_eq!(tls.ca_roots.len(), 2);
    // A new CA under the same name is a change to reload, not a no-op.
    std::fs::write(&file, ca_pem()).unwrap();
    let b = load_str(&one(&replica), &|_| None).unwrap();
    assert_eq!(b.replicas[0].tls.as_ref().unwrap().ca_roots.len(), 1);
    assert_ne!(a.hash, b.hash);
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn a_secret_that_is_not_a_header_value_fails_at_its_field_without_printing_it() {
    let env = env_of(&[
        ("NL", "sk-hidden-1\nX-Injected: yes"),
        ("TRAILING", "sk-hidden-2\n"),
        ("CTRL", "sk-hidden-3\u{1}"),
        ("ADMIN", "sk-hidden-4\r\n"),
    ]);
    let yaml = format!(
        "server: {{ admin_token: \"${{ADMIN}}\" }}\n{HEAD}replicas:\n\
         - {{ id: a, model: m, cloud: dc, url: \"http://a\", auth: {{ bearer: \"${{NL}}\" }} }}\n\
         - {{ id: b, model: m, cloud: dc, url: \"http://b\", auth: {{ bearer: \"${{TRAILING}}\" }} }}\n\
         - {{ id: c, model: m, cloud: dc, url: \"http://c\", auth: {{ header: api-key, value: \"${{CTRL}}\" }} }}\n\
         - {{ id: d, model: m, cloud: dc, url: \"http://d\", auth: {{ bearer: \"   \" }} }}\n"
    );
    let err = refused(&yaml, &env);
    for needle in [
        "server.admin_token: the secret contains a line break",
        "replicas[0].auth.bearer: the secret contains a line break",
        "replicas[1].auth.bearer: the secret contains a line break",
        "replicas[2].auth.value: the secret contains a control character",
        "replicas[3].auth.bearer: the secret is empty or only whitespace",
    ] {
        assert!(err.contains(needle), "{needle}\n{err}");
    }
    assert!(!err.contains("sk-hidden"), "{err}");
}

#[test]
fn a_credential_file_may_end_in_one_line_break_and_nothing_worse() {
    let good = temp_file(b"sk-file-token\n");
    let replica = format!(
        "cloud: dc, url: \"http://h\", auth: {{ bearer_file: \"{}\" }}",
        good.display()
    );
    let c = load_str(&one(&replica), &|_| None).unwrap();
    assert!(matches!(&c.replicas[0].auth, Some(UpstreamAuth::File { path, .. }) if *path == good));
    let contents = std::fs::read_to_string(&good).unwrap();
    assert_eq!(
        crate::secret::header_value_from_file_contents(&contents),
        Ok("sk-file-token")
    );

    let bad = temp_file(b"sk-hidden-line1\nline2\n");
    let missing = std::env::temp_dir().join("sy-config-no-such-file");
    for (file, field, needle) in [
        (&bad, "bearer_file", "contains a line break"),
        (&missing, "bearer_file", "cannot read"),
        (&bad, "value_file", "contains a line break"),
    ] {
        let auth = if field == "bearer_file" {
            format!("bearer_file: \"{}\"", file.display())
        } else {
            format!("header: api-key, value_file: \"{}\"", file.display())
        };
        let replica = format!("cloud: dc, url: \"http://h\", auth: {{ {auth} }}");
        let err = refused(&one(&replica), &|_| None);
        assert!(
            err.contains(&format!("replicas[0].auth.{field}: ")) && err.contains(needle),
            "{field} {needle}: {err}"
        );
        assert!(!err.contains("sk-hidden"), "{err}");
    }
    std::fs::remove_file(&good).unwrap();
    std::fs::remove_file(&bad).unwrap();
}
