//! `replicas[i].discovery`: templates, their defaults, every error at its
//! path, and the round trip of a template through its serialization.

use std::time::Duration;

use super::{env, errors};
use crate::{DiscoverySource, DnsRecord, load_str};

pub(super) fn with(discovery: &str) -> String {
    format!(
        r#"
clouds: {{ c: {{ provider: private }}, aws: {{ provider: aws }} }}
models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]
replicas:
  - {{ id: pool, model: m, cloud: c, url: "http://pool.internal:8000/v1", engine: vllm,
      discovery: {discovery} }}
"#
    )
}

#[test]
fn a_template_is_not_a_replica_but_serves_its_version() {
    let c = load_str(&with("{ dns: pool.internal }"), &env).unwrap();
    assert!(
        c.replicas.is_empty(),
        "only a template: the table starts empty"
    );
    assert_eq!(c.templates.len(), 1);
    let d = c.templates[0].discovery.as_ref().unwrap();
    assert_eq!(d.max_members, crate::defaults::DISCOVERY_MAX_MEMBERS);
    match &d.source {
        DiscoverySource::Dns {
            name,
            record,
            port,
            nameserver,
            min_refresh,
            max_refresh,
        } => {
            assert_eq!(name, "pool.internal");
            assert_eq!(*record, DnsRecord::A);
            assert_eq!(*port, None);
            assert_eq!(*nameserver, None);
            assert_eq!(*min_refresh, Duration::from_secs(1));
            assert_eq!(*max_refresh, Duration::from_secs(30));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.templates[0].member_port(), 8000);
    let m = c.templates[0]
        .member("10.1.2.3:9000".parse().unwrap(), None)
        .unwrap();
    assert_eq!(m.id, "pool@10.1.2.3:9000");
    assert_eq!(m.url.as_str(), "http://10.1.2.3:9000/v1");
    assert!(m.discovery.is_none());
}

#[test]
fn discovery_errors_name_their_field() {
    let cases = [
        (
            "{ }",
            "replicas[0].discovery: give `dns: NAME`, `registration: true` or `kubernetes: {...}`",
        ),
        (
            "{ dns: a.b, registration: true }",
            "replicas[0].discovery: give either",
        ),
        (
            "{ dns: \"bad name!\" }",
            "replicas[0].discovery.dns: `bad name!` is not a DNS name",
        ),
        (
            "{ dns: a.b, type: mx }",
            "replicas[0].discovery.type: unknown record type `mx`",
        ),
        (
            "{ dns: a.b, type: srv, port: 80 }",
            "replicas[0].discovery.port: SRV records carry the port",
        ),
        (
            "{ dns: a.b, port: 70000 }",
            "replicas[0].discovery.port: must be 1..=65535",
        ),
        (
            "{ dns: a.b, nameserver: dns.local }",
            "replicas[0].discovery.nameserver: `dns.local` is not an IP",
        ),
        (
            "{ dns: a.b, min_refresh_ms: 5000, max_refresh_ms: 1000 }",
            "replicas[0].discovery.max_refresh_ms: must be >= min_refresh_ms",
        ),
        (
            "{ dns: a.b, max_ttl_ms: 1000 }",
            "replicas[0].discovery.max_ttl_ms: only for `registration: true`",
        ),
        (
            "{ registration: true, port: 80 }",
            "replicas[0].discovery.port: only for `dns` discovery",
        ),
        (
            "{ registration: true, max_members: 0 }",
            "replicas[0].discovery.max_members: must be 1..=10000",
        ),
        (
            "{ dns: a.b, ttl: 5 }",
            "replicas[0].discovery.ttl: unknown field `ttl`",
        ),
    ];
    for (discovery, want) in cases {
        let got = errors(&with(discovery));
        assert!(
            got.iter().any(|e| e.starts_with(want)),
            "{discovery}: want `{want}`, got {got:?}"
        );
    }
    let managed = with("{ registration: true }").replace("cloud: c", "cloud: aws");
    let got = errors(&managed);
    assert!(
        got.iter()
            .any(|e| e.starts_with("replicas[0].discovery: a managed cloud")
                || e.starts_with("replicas[0].engine")),
        "{got:?}"
    );
}

#[test]
fn templates_round_trip_through_their_serialization() {
    let yaml = with(
        "{ dns: _http._tcp.pool.internal, type: srv, nameserver: \"127.0.0.1:5353\", \
         min_refresh_ms: 200, max_refresh_ms: 2000, max_members: 9 }",
    ) + "  - { id: reg, model: m, cloud: c, url: \"https://127.0.0.1\", \
         discovery: { registration: true, max_ttl_ms: 30000 } }\n";
    super::round_trip::round_trip("templates", &yaml, &env);
    let c = load_str(&yaml, &env).unwrap();
    let out = serde_yaml_ng::to_string(&c).unwrap();
    let again = load_str(&out, &|_| None).unwrap();
    assert_eq!(
        format!("{:?}", again.templates),
        format!("{:?}", c.templates)
    );
    assert!(out.contains("registration: true"), "{out}");
}
