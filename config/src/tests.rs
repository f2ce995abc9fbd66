//! Loading and validation, through the one public entry point.

use super::*;

const GOOD: &str = r#"
server:
  listen: 127.0.0.1:8080
  admin_listen: 127.0.0.1:9090
clouds:
  onprem: { provider: private, region: fra }
  aws-east: { provider: aws, region: us-east-1 }
models:
  - name: chat
    versions:
      - { name: v1, weight: 90 }
      - { name: v2, weight: 10 }
    fallbacks: [small]
  - name: small
    versions: [{ name: v1, weight: 100 }]
replicas:
  - { id: a, model: chat, version: v1, cloud: onprem, url: "http://10.0.0.1:8000", max_concurrency: 8 }
  - { id: b, model: chat, version: v2, cloud: aws-east, url: "http://10.0.0.2:8000",
      auth: { bearer: "${KEY}" }, cost: { input_per_1k: 0.5, output_per_1k: 1.5 } }
  - { id: c, model: small, cloud: onprem, url: "http://10.0.0.3:8000/base", protocol: kserve_v2 }
"#;

fn env(k: &str) -> Option<String> {
    (k == "KEY").then(|| "sk-secret-value".to_string())
}

fn errors(text: &str) -> Vec<String> {
    match load_str(text, &env) {
        Ok(_) => panic!("config was accepted"),
        Err(e) => e.field_errors().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_good_config_loads_with_defaults_filled_in() {
    let c = load_str(GOOD, &env).unwrap();
    assert_eq!(c.models.len(), 2);
    assert_eq!(
        c.replicas[2].version, "v1",
        "single-version group implies the version"
    );
    assert_eq!(c.replicas[2].protocol, Protocol::KserveV2);
    assert_eq!(c.replicas[1].provider, Provider::Aws);
    assert_eq!(c.replicas[2].max_concurrency, 64);
    assert_eq!(c.server.limits.max_body_bytes, 8 << 20);
    match &c.replicas[1].auth {
        Some(UpstreamAuth::Bearer(s)) => assert_eq!(s.expose(), "sk-secret-value"),
        other => panic!("unexpected auth {other:?}"),
    }
}

#[test]
fn serialized_config_redacts_secrets() {
    let c = load_str(GOOD, &env).unwrap();
    let json = serde_json::to_string(&c).unwrap();
    assert!(!json.contains("sk-secret-value"));
    assert!(json.contains("<redacted>"));
}

#[test]
fn hash_tracks_content_not_formatting() {
    let a = load_str(GOOD, &env).unwrap();
    let b = load_str(
        &GOOD.replace("\n  - name: small", "\n\n  - name: small"),
        &env,
    )
    .unwrap();
    assert_eq!(a.hash, b.hash);
    let c = load_str(&GOOD.replace("weight: 90", "weight: 80"), &env).unwrap();
    assert_ne!(a.hash, c.hash);
}

#[test]
fn weight_out_of_range_names_the_field_path() {
    let errs = errors(&GOOD.replace("weight: 90", "weight: 140"));
    assert_eq!(
        errs,
        vec!["models[0].versions[0].weight: must be 0..=100, got 140"]
    );
}

#[test]
fn all_problems_are_listed_not_just_the_first() {
    let bad = GOOD
        .replace("model: small, cloud: onprem", "model: nope, cloud: mars")
        .replace("id: b,", "id: a,")
        .replace("http://10.0.0.1:8000", "ftp://x")
        .replace("weight: 10 }", "weight: 0 }")
        .replace("weight: 90", "weight: 0");
    let errs = errors(&bad);
    let joined = errs.join("\n");
    for expected in [
        "replicas[2].model: unknown model group `nope`",
        "replicas[2].cloud: unknown cloud `mars`",
        "replicas[1].id: duplicate replica id `a`",
        "replicas[0].url: scheme `ftp` is not allowed",
        "models[0].versions: total weight is 0",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in:\n{joined}"
        );
    }
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let errs = errors(&GOOD.replace("max_concurrency: 8", "max_concurency: 8"));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("replicas[0]"), "{errs:?}");
    assert!(
        errs[0].contains("unknown field `max_concurency`"),
        "{errs:?}"
    );
}

#[test]
fn wrong_types_name_the_field() {
    let errs = errors(&GOOD.replace("weight: 90", "weight: lots"));
    assert!(
        errs[0].starts_with("models[0].versions[0].weight"),
        "{errs:?}"
    );
}

#[test]
fn missing_env_var_is_reported_at_its_field() {
    let errs = match load_str(GOOD, &|_| None) {
        Err(e) => e.field_errors(),
        Ok(_) => panic!("accepted"),
    };
    assert_eq!(errs[0].path, "replicas[1].auth.bearer");
    assert!(errs[0].reason.contains("KEY is not set"));
}

#[test]
fn references_are_checked() {
    let errs = errors(&GOOD.replace("fallbacks: [small]", "fallbacks: [chat, ghost]")).join("\n");
    assert!(errs.contains("models[0].fallbacks[0]: a group cannot fall back to itself"));
    assert!(errs.contains("models[0].fallbacks[1]: unknown model group `ghost`"));
    let errs = errors(&GOOD.replace("version: v2,", "version: v9,")).join("\n");
    assert!(
        errs.contains("replicas[1].version: model group `chat` has no version `v9`"),
        "{errs}"
    );
    assert!(errs.contains("models[0].versions[1]: `chat@v2` has weight 10 but no replica"));
}

#[test]
fn context_fallbacks_and_retry_after_cap_are_checked() {
    let bad = GOOD.replace(
        "fallbacks: [small]",
        "fallbacks: [small]\n    context_fallbacks: [ghost]\n    routing: { retry_after_max_ms: -1 }",
    );
    let errs = errors(&bad).join("\n");
    assert!(
        errs.contains("models[0].context_fallbacks[0]: unknown model group `ghost`"),
        "{errs}"
    );
    assert!(
        errs.contains("models[0].routing.retry_after_max_ms: must be 0..=60000"),
        "{errs}"
    );
    let c = load_str(GOOD, &env).unwrap();
    assert_eq!(
        c.models[0].routing.retry_after_max,
        crate::defaults::RETRY_AFTER_MAX
    );
    assert!(c.models[0].context_fallbacks.is_empty());
}

#[test]
fn resume_strategies_and_limit_are_checked() {
    let c = load_str(GOOD, &env).unwrap();
    assert_eq!(c.replicas[0].resume, crate::Resume::None);
    assert_eq!(
        c.models[0].routing.max_resumes,
        crate::defaults::MAX_RESUMES
    );
    let ok = GOOD
        .replace(
            "max_concurrency: 8 }",
            "max_concurrency: 8, resume: prefill }",
        )
        .replace(
            "fallbacks: [small]",
            "fallbacks: [small]\n    routing: { max_resumes: 2 }",
        );
    let c = load_str(&ok, &env).unwrap();
    assert_eq!(c.replicas[0].resume, crate::Resume::Prefill);
    assert_eq!(c.models[0].routing.max_resumes, 2);
    let bad = GOOD
        .replace(
            "max_concurrency: 8 }",
            "max_concurrency: 8, resume: rewind }",
        )
        .replace(
            "protocol: kserve_v2 }",
            "protocol: kserve_v2, resume: regenerate }",
        )
        .replace(
            "fallbacks: [small]",
            "fallbacks: [small]\n    routing: { max_resumes: 9 }",
        );
    let errs = errors(&bad).join("\n");
    assert!(
        errs.contains("replicas[0].resume: unknown strategy `rewind`"),
        "{errs}"
    );
    assert!(
        errs.contains("replicas[2].resume: only a replica speaking the OpenAI protocol"),
        "{errs}"
    );
    assert!(
        errs.contains("models[0].routing.max_resumes: must be 0..=8"),
        "{errs}"
    );
}

#[test]
fn token_exact_resume_is_accepted_and_written_back() {
    let ok = GOOD.replace(
        "max_concurrency: 8 }",
        "max_concurrency: 8, resume: token_ids }",
    );
    let c = load_str(&ok, &env).unwrap();
    assert_eq!(c.replicas[0].resume, crate::Resume::TokenIds);
    let yaml = serde_yaml_ng::to_string(&c).unwrap();
    assert!(yaml.contains("resume: token_ids"), "{yaml}");
    let back = load_str(&yaml.replace("<redacted>", "x"), &env).unwrap();
    assert_eq!(back.replicas[0].resume, crate::Resume::TokenIds);
    let bad = GOOD.replace(
        "protocol: kserve_v2 }",
        "protocol: kserve_v2, resume: token_ids }",
    );
    let errs = errors(&bad).join("\n");
    assert!(
        errs.contains("replicas[2].resume: only a replica speaking the OpenAI protocol"),
        "{errs}"
    );
}

#[test]
fn urls_must_be_plain_http_destinations() {
    for (url, reason) in [
        ("not a url", "is not a URL"),
        ("http://user:pw@h:1", "must not carry credentials"),
        ("http://h:1/?a=b", "query"),
        ("http://0.0.0.0:1", "0.0.0.0"),
    ] {
        let errs = errors(&GOOD.replace("http://10.0.0.1:8000", url)).join("\n");
        assert!(errs.contains("replicas[0].url: "), "{errs}");
        assert!(errs.contains(reason), "{url}: {errs}");
    }
}

#[test]
fn public_admin_listener_requires_a_token() {
    let errs = errors(&GOOD.replace("admin_listen: 127.0.0.1:9090", "admin_listen: 0.0.0.0:9090"));
    assert!(
        errs[0].starts_with("server.admin_token: required"),
        "{errs:?}"
    );
    let with_token = GOOD.replace(
        "admin_listen: 127.0.0.1:9090",
        "admin_listen: 0.0.0.0:9090\n  admin_token: t0ken",
    );
    assert!(load_str(&with_token, &env).is_ok());
}

#[test]
fn admin_tokens_must_not_be_blank_and_roles_are_read_or_operator() {
    for blank in ["\"\"", "\"  \"", "\"\\t\""] {
        let errs = errors(&GOOD.replace(
            "admin_listen: 127.0.0.1:9090",
            &format!("admin_listen: 127.0.0.1:9090\n  admin_token: {blank}"),
        ));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("server.admin_token: must not be empty or only whitespace")),
            "{blank}: {errs:?}"
        );
    }
    let errs = errors(&GOOD.replace(
        "admin_listen: 127.0.0.1:9090",
        "admin_listen: 127.0.0.1:9090\n  admin_tokens: [{ token: \" \", role: read }, { token: ok, role: admin }]\n  admin_hosts: [\"a b\"]",
    ));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.admin_tokens[0].token: must not be empty")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.admin_tokens[1].role: `admin` is not a role")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.admin_hosts[0]: ")),
        "{errs:?}"
    );
    // A read token alone makes a public admin listener acceptable.
    let c = load_str(
        &GOOD.replace(
            "admin_listen: 127.0.0.1:9090",
            "admin_listen: 0.0.0.0:9090\n  admin_tokens: [{ token: r3ad, role: read }]\n  admin_hosts: [GW.internal]",
        ),
        &env,
    )
    .unwrap();
    assert_eq!(c.server.admin_tokens[0].role, crate::AdminRole::Read);
    assert_eq!(c.server.admin_hosts, ["gw.internal"]);
    assert!(c.server.admin_auth());
}

#[test]
fn connection_caps_and_response_header_patterns_default_and_validate() {
    let c = load_str(GOOD, &env).unwrap();
    assert_eq!(c.server.limits.max_connections, 10_000);
    assert_eq!(c.server.limits.max_connections_per_client, 10_000);
    assert!(c.server.response_headers.allow.is_empty());
    let errs = errors(&GOOD.replace(
        "admin_listen: 127.0.0.1:9090",
        "admin_listen: 127.0.0.1:9090\n  limits: { max_connections: 0 }\n  response_headers: { allow: [Server], deny: [\"bad name\", \"*\"] }",
    ));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.limits.max_connections: must be 1..=")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.response_headers.deny[0]: ")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.response_headers.deny[1]: ")),
        "{errs:?}"
    );
    let c = load_str(
        &GOOD.replace(
            "admin_listen: 127.0.0.1:9090",
            "admin_listen: 127.0.0.1:9090\n  response_headers: { allow: [Server], deny: [x-cache-*] }",
        ),
        &env,
    )
    .unwrap();
    assert_eq!(c.server.response_headers.allow, ["server"]);
    assert_eq!(c.server.response_headers.deny, ["x-cache-*"]);
}

#[test]
fn syntax_errors_and_empty_files_are_explained() {
    assert!(matches!(
        load_str("models: [", &env),
        Err(ConfigError::Syntax(_))
    ));
    let e = load_str("", &env).unwrap_err();
    assert!(e.to_string().contains("empty"));
}

#[test]
fn routing_health_and_limit_fields_default_and_validate() {
    let c = load_str(GOOD, &env).unwrap();
    let l = &c.server.limits;
    assert_eq!(l.first_token_timeout, l.attempt_timeout);
    assert_eq!(l.sse_keepalive, Some(std::time::Duration::from_secs(15)));
    assert_eq!(l.max_buffered_bytes, 256 << 20);
    assert_eq!(c.replicas[0].weight, 1);
    let r = &c.models[0].routing;
    assert_eq!(r.slow_start, std::time::Duration::from_secs(10));
    assert_eq!(r.affinity, Affinity::default());
    assert!(c.models[0].health_check.is_none());

    let text = GOOD
        .replace(
            "    fallbacks: [small]\n",
            "    fallbacks: [small]\n    routing: { policy: affinity, affinity_header: X-Session, slow_start_ms: 0 }\n    health_check: { interval_ms: 500, rise: 3 }\n",
        )
        .replace("max_concurrency: 8 }", "max_concurrency: 8, weight: 3 }")
        .replace(
            "  admin_listen: 127.0.0.1:9090\n",
            "  admin_listen: 127.0.0.1:9090\n  limits: { sse_keepalive_ms: 0, first_token_timeout_ms: 1500 }\n",
        );
    let c = load_str(&text, &env).unwrap();
    let m = &c.models[0];
    assert_eq!(m.routing.policy, Policy::Affinity);
    assert_eq!(m.routing.affinity.header, "x-session");
    assert_eq!(m.routing.slow_start, std::time::Duration::ZERO);
    let hc = m.health_check.as_ref().unwrap();
    assert_eq!((hc.rise, hc.fall), (3, 3));
    assert_eq!(hc.interval.as_millis(), 500);
    assert_eq!(c.replicas[0].weight, 3);
    assert_eq!(c.server.limits.sse_keepalive, None);
    assert_eq!(c.server.limits.first_token_timeout.as_millis(), 1500);
}

#[test]
fn bad_routing_health_and_limit_fields_name_their_path() {
    let text = GOOD
        .replace(
            "    fallbacks: [small]\n",
            "    fallbacks: [small]\n    routing: { policy: sticky, affinity_load_factor: 0.5, affinity_header: \"a b\" }\n    health_check: { interval_ms: 100, timeout_ms: 200, fall: 0, path: health }\n",
        )
        .replace("max_concurrency: 8 }", "max_concurrency: 8, weight: 0 }")
        .replace(
            "  admin_listen: 127.0.0.1:9090\n",
            "  admin_listen: 127.0.0.1:9090\n  limits: { sse_keepalive_ms: -1, max_buffered_bytes: 0 }\n",
        );
    let errs = errors(&text);
    for needle in [
        "replicas[0].weight: must be 1..=1000000, got 0",
        "models[0].routing.policy: unknown policy `sticky`",
        "models[0].routing.affinity_load_factor: must be 1..=100",
        "models[0].routing.affinity_header: `a b` is not a valid header name",
        "models[0].health_check.timeout_ms: must not exceed interval_ms",
        "models[0].health_check.fall: must be 1..=100, got 0",
        "models[0].health_check.path: `health` must be an absolute path",
        "server.limits.sse_keepalive_ms: must be 0..=3600000, got -1",
        "server.limits.max_buffered_bytes: must be 1..=",
    ] {
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "{needle}: {errs:#?}"
        );
    }
}

#[test]
fn a_rollout_defaults_its_baseline_and_steps() {
    let text = GOOD.replace(
        "    fallbacks: [small]\n",
        "    fallbacks: [small]\n    rollout: { canary: v2 }\n",
    );
    let c = load_str(&text, &env).unwrap();
    let r = c.models[0].rollout.as_ref().unwrap();
    assert_eq!(r.baseline, "v1");
    assert_eq!(r.steps, [5, 25, 50, 100]);
    assert_eq!(r.step_interval, std::time::Duration::from_secs(60));
}

#[test]
fn a_bad_rollout_names_each_field() {
    let text = GOOD.replace(
        "    fallbacks: [small]\n",
        "    fallbacks: [small]\n    rollout: { canary: v9, baseline: v1, steps: [50, 20, 140], max_p95_ratio: 0.5 }\n",
    );
    let errs = errors(&text);
    for needle in [
        "models[0].rollout.canary: unknown version `v9` (versions: v1, v2)",
        "models[0].rollout.steps[1]: steps must increase, got 20 after 50",
        "models[0].rollout.steps[2]: must be 1..=100",
        "models[0].rollout.max_p95_ratio: must be a number >= 1",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(needle)),
            "{needle}\n{errs:#?}"
        );
    }
    let same = GOOD.replace(
        "    fallbacks: [small]\n",
        "    fallbacks: [small]\n    rollout: { canary: v2, baseline: v2 }\n",
    );
    assert!(
        errors(&same)
            .iter()
            .any(|e| e == "models[0].rollout.baseline: must differ from the canary version")
    );
}

#[test]
fn hourly_private_capacity_becomes_a_price_per_token() {
    let text = GOOD.replace(
        "max_concurrency: 8 }",
        "max_concurrency: 8, cost: { per_hour: 3.6, tokens_per_hour: 3600000 } }",
    );
    let c = load_str(&text, &env).unwrap();
    let cost = c.replicas[0].cost;
    assert!((cost.input_per_1k - 0.001).abs() < 1e-12, "{cost:?}");
    assert_eq!(cost.input_per_1k, cost.output_per_1k);
    assert_eq!(cost.per_hour, Some(3.6));

    let half = GOOD.replace(
        "max_concurrency: 8 }",
        "max_concurrency: 8, cost: { per_hour: 3.6 } }",
    );
    assert!(
        errors(&half)
            .iter()
            .any(|e| e.starts_with("replicas[0].cost.tokens_per_hour: required with per_hour"))
    );
    let both = GOOD.replace(
        "max_concurrency: 8 }",
        "max_concurrency: 8, cost: { per_hour: 1, tokens_per_hour: 0, input_per_1k: 0.1 } }",
    );
    let errs = errors(&both);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("replicas[0].cost: give either")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("replicas[0].cost.tokens_per_hour: must be > 0")),
        "{errs:?}"
    );
}

mod client_certs;
mod cloud;
mod cors;
mod discovery;
mod global_limits;
mod jwt;
mod kubernetes;
mod resolve;
mod round_trip;
mod server_tls;
mod workers;

#[test]
fn tenants_keep_key_hashes_and_a_public_listener_needs_them() {
    let public = GOOD.replace("listen: 127.0.0.1:8080", "listen: 0.0.0.0:8080");
    let errs = errors(&public);
    assert!(
        errs.iter().any(|e| e.starts_with(
            "server.listen: 0.0.0.0:8080 is not a loopback address and no client authentication"
        )),
        "{errs:?}"
    );
    let open = public.replace(
        "admin_listen: 127.0.0.1:9090",
        "admin_listen: 127.0.0.1:9090\n  allow_unauthenticated: true",
    );
    assert!(load_str(&open, &env).is_ok());
    let hash = format!(
        "sha256:{}",
        crate::key_digest(b"k2")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let with_tenants = format!(
        "{public}tenants:\n  - name: a\n    keys: [{{ id: k1, key: k1-secret, tokens_per_minute: 500, daily_budget_usd: 0.5 }}, {{ id: k2, hash: \"{hash}\", requests_per_minute: 6 }}]\n    models: [chat]\n    max_priority: normal\n    requests_per_minute: 60\n    concurrency: 2\n    tokens_per_minute: 1000\n    monthly_budget_usd: 20\n    default_max_tokens: 256\n"
    );
    let c = load_str(&with_tenants, &env).unwrap();
    assert_eq!(c.tenants[0].max_priority, crate::MaxPriority::Normal);
    assert_eq!(
        (c.tenants[0].requests_per_minute, c.tenants[0].concurrency),
        (Some(60), Some(2))
    );
    let t = &c.tenants[0];
    assert_eq!(
        (
            t.quota.tokens_per_minute,
            t.quota.monthly_budget_usd,
            t.quota.daily_budget_usd
        ),
        (Some(1000), Some(20.0), None)
    );
    assert_eq!(t.default_max_tokens, 256);
    assert_eq!(t.keys[0].quota.tokens_per_minute, Some(500));
    assert_eq!(t.keys[0].quota.daily_budget_usd, Some(0.5));
    assert_eq!(t.keys[1].requests_per_minute, Some(6));
    assert_eq!(c.key_index[&crate::key_digest(b"k1-secret")], (0, 0));
    assert_eq!(c.key_index[&crate::key_digest(b"k2")], (0, 1));
    let yaml = serde_yaml_ng::to_string(&c.tenants).unwrap();
    assert!(!yaml.contains("k1-secret"), "{yaml}");
    let again = load_str(&format!("{public}tenants:\n{yaml}"), &env).unwrap();
    assert_eq!(again.key_index, c.key_index, "the hashes load again");
    assert_eq!(again.tenants[0].quota, t.quota, "and the limits");
    assert_eq!(again.tenants[0].keys[0].quota, t.keys[0].quota);
    assert_eq!(again.tenants[0].keys[1].requests_per_minute, Some(6));

    let bad = format!(
        "{public}tenants:\n  - name: a\n    keys: [{{ id: k1, hash: \"sha256:zz\" }}, {{ id: k2 }}, {{ id: k3, key: \" \" }}, {{ id: k4, key: k4-secret, tokens_per_minute: 0, monthly_budget_usd: -1 }}]\n    models: [nope, \"x@y\"]\n    clouds: [mars]\n    max_priority: urgent\n    concurrency: 0\n    daily_budget_usd: .nan\n    default_max_tokens: 0\n"
    );
    let errs = errors(&bad);
    for needle in [
        "tenants[0].keys[0].hash: must be `sha256:`",
        "tenants[0].keys[1]: needs exactly one of hash, key, key_file",
        "tenants[0].keys[2].key: the key is empty",
        "tenants[0].models[0]: unknown model group `nope`",
        "tenants[0].models[1]: unknown model version `x@y`",
        "tenants[0].clouds[0]: `mars` is neither a cloud id",
        "tenants[0].max_priority: `urgent` is not a priority",
        "tenants[0].concurrency: must be 1..=",
        "tenants[0].daily_budget_usd: must be 0..=1000000000 (USD), got NaN",
        "tenants[0].default_max_tokens: must be 1..=",
        "tenants[0].keys[3].tokens_per_minute: must be 1..=",
        "tenants[0].keys[3].monthly_budget_usd: must be 0..=1000000000 (USD), got -1",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(needle)),
            "{needle}: {errs:?}"
        );
    }
}

#[test]
fn lora_adapters_route_to_their_group_and_clash_with_nothing() {
    let with = |adapters: &str| {
        GOOD.replace(
            "    fallbacks: [small]\n",
            &format!("    fallbacks: [small]\n    adapters: {adapters}\n"),
        )
    };
    let c = load_str(&with("[sql-lora, org/chat-lora]"), &env).unwrap();
    assert_eq!(c.adapter_group("org/chat-lora").unwrap().name, "chat");
    assert!(c.adapter_group("chat").is_none());
    assert_eq!(c.models[0].routing.scoring.lora_weight, 4.0);
    let errs = errors(&with("[small, x@y, sql, sql]"));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("models[0].adapters[0]") && e.contains("model group")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with("models[0].adapters[1]")),
        "`@` would read as a version pin: {errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("models[0].adapters[3]") && e.contains("twice")),
        "{errs:?}"
    );
}
