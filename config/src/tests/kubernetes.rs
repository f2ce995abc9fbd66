//! `replicas[i].discovery.kubernetes`: the parsed source, its defaults,
//! every error at its field path, and the `/admin/config` round trip.

use super::discovery::with;
use super::{env, errors};
use crate::{DiscoverySource, KubePort, Membership, load_str};

fn source(discovery: &str) -> DiscoverySource {
    let c = load_str(&with(discovery), &env).unwrap();
    assert!(c.replicas.is_empty(), "a template is not a replica");
    c.templates[0].discovery.clone().unwrap().source
}

#[test]
fn a_service_with_a_named_or_numbered_port() {
    let s = source("{ kubernetes: { namespace: llm, service: vllm, port: http } }");
    assert_eq!(s.kind(), Membership::Kubernetes);
    assert_eq!(
        s,
        DiscoverySource::Kubernetes {
            namespace: "llm".into(),
            service: "vllm".into(),
            port: KubePort::Name("http".into()),
            kubeconfig: None,
        }
    );
    let s = source(
        "{ kubernetes: { namespace: llm, service: vllm, port: 8001, kubeconfig: /etc/kc.yaml } }",
    );
    assert!(matches!(
        s,
        DiscoverySource::Kubernetes { port: KubePort::Number(8001), kubeconfig: Some(ref p), .. }
            if p.to_str() == Some("/etc/kc.yaml")
    ));
    // No port: the template URL's.
    let s = source("{ kubernetes: { namespace: llm, service: vllm } }");
    assert!(matches!(
        s,
        DiscoverySource::Kubernetes {
            port: KubePort::Number(8000),
            ..
        }
    ));
}

#[test]
fn kubernetes_errors_name_their_field() {
    let k = "replicas[0].discovery.kubernetes";
    let cases = [
        (
            "{ kubernetes: { service: vllm } }",
            format!("{k}.namespace: required"),
        ),
        (
            "{ kubernetes: { namespace: llm } }",
            format!("{k}.service: required"),
        ),
        (
            "{ kubernetes: { namespace: LLM, service: vllm } }",
            format!("{k}.namespace: `LLM` is not a Kubernetes name"),
        ),
        (
            "{ kubernetes: { namespace: llm, service: \"-vllm\" } }",
            format!("{k}.service: `-vllm` is not a Kubernetes name"),
        ),
        (
            "{ kubernetes: { namespace: llm, service: vllm, port: 0 } }",
            format!("{k}.port: must be 1..=65535"),
        ),
        (
            "{ kubernetes: { namespace: llm, service: vllm, port: \"http port\" } }",
            format!("{k}.port: `http port` is neither a port number nor a Kubernetes port name"),
        ),
        (
            "{ kubernetes: { namespace: llm, service: vllm, kubeconfig: \"\" } }",
            format!("{k}.kubeconfig: empty path"),
        ),
        (
            "{ kubernetes: { namespace: llm, service: vllm, label: x } }",
            format!("{k}.label: unknown field `label`"),
        ),
        (
            "{ kubernetes: { namespace: llm, service: vllm }, port: 80 }",
            "replicas[0].discovery.port: not for `kubernetes` discovery".to_owned(),
        ),
        (
            "{ kubernetes: { namespace: llm, service: vllm }, dns: a.b }",
            "replicas[0].discovery: give one of `dns`, `registration: true` or `kubernetes`"
                .to_owned(),
        ),
    ];
    for (discovery, want) in cases {
        let got = errors(&with(discovery));
        assert!(
            got.iter().any(|e| e.starts_with(&want)),
            "{discovery}: want `{want}`, got {got:?}"
        );
    }
}

#[test]
fn kubernetes_templates_round_trip() {
    let yaml = with(
        "{ kubernetes: { namespace: llm, service: vllm, port: http, kubeconfig: /k/config }, \
         max_members: 50 }",
    ) + "  - { id: num, model: m, cloud: c, url: \"http://x:8000/v1\", \
         discovery: { kubernetes: { namespace: llm, service: sglang, port: 30000 } } }\n";
    super::round_trip::round_trip("kubernetes templates", &yaml, &env);
    let c = load_str(&yaml, &env).unwrap();
    let out = serde_yaml_ng::to_string(&c).unwrap();
    let again = load_str(&out, &|_| None).unwrap();
    assert_eq!(
        format!("{:?}", again.templates),
        format!("{:?}", c.templates)
    );
    assert!(out.contains("port: http"), "{out}");
    assert!(out.contains("port: 30000"), "{out}");
}
