//! Cloud protocol settings (`azure_openai`, `bedrock`, `sagemaker`), TLS
//! and credential-file shapes: each problem at its field path.

/// AWS keys for replicas without their own: what the loader's env gives.
fn aws_env(k: &str) -> Option<String> {
    match k {
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("wJalrXUtnFEMI/K7MDENG".into()),
        _ => None,
    }
}

fn errors(replica: &str) -> String {
    let yaml = format!(
        "clouds: {{ aws: {{ provider: aws }}, az: {{ provider: azure }} }}\n\
         models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]\n\
         replicas:\n  - {{ id: r, model: m, {replica} }}\n"
    );
    match crate::load_str(&yaml, &aws_env) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn cloud_protocol_settings_are_checked_with_field_paths() {
    for (replica, path, needle) in [
        (
            "cloud: az, url: \"https://x.openai.azure.com\", protocol: azure_openai, auth: { bearer: t }",
            "replicas[0].azure",
            "api_version",
        ),
        (
            "cloud: az, url: \"https://x.openai.azure.com\", protocol: azure_openai, azure: { api_version: \"2024-06-01\" }",
            "replicas[0].auth",
            "required",
        ),
        (
            "cloud: aws, url: \"https://bedrock-runtime.us-east-1.amazonaws.com\", protocol: bedrock",
            "replicas[0].aws.region",
            "required",
        ),
        (
            "cloud: aws, url: \"https://b\", protocol: bedrock, aws: { region: us-east-1, access_key_id: a }",
            "replicas[0].aws",
            "both",
        ),
        (
            "cloud: aws, url: \"https://s\", protocol: sagemaker, aws: { region: us-east-1 }",
            "replicas[0].aws.endpoint_name",
            "required",
        ),
        (
            "cloud: aws, url: \"http://h\", aws: { region: us-east-1 }",
            "replicas[0].aws",
            "only meaningful",
        ),
        (
            "cloud: aws, url: \"https://h\", tls: { ca_file: /nonexistent/ca.pem }",
            "replicas[0].tls.ca_file",
            "cannot read",
        ),
        (
            "cloud: aws, url: \"http://h\", auth: { bearer: x, bearer_file: /f }",
            "replicas[0].auth",
            "bearer_file",
        ),
    ] {
        let err = errors(replica);
        assert!(
            err.contains(&format!("{path}:")) && err.contains(needle),
            "{replica}\n{err}"
        );
    }
    assert_eq!(
        errors(
            "cloud: aws, url: \"https://s\", protocol: sagemaker, aws: { region: us-east-1, endpoint_name: e }"
        ),
        ""
    );
}
