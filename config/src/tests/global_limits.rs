//! `global_limits:` defaults, every error at its path, the tenant's
//! override, and the password kept out of the output.

use super::{GOOD, env, errors};
use crate::{FailMode, load_str};

fn with(block: &str) -> String {
    format!("{GOOD}{block}")
}

#[test]
fn absent_means_none_and_defaults_fill_in() {
    assert!(load_str(GOOD, &env).unwrap().global_limits.is_none());
    let c = load_str(
        &with("global_limits: { redis_url: \"redis://127.0.0.1:6399/0\" }\n"),
        &env,
    )
    .unwrap();
    let g = c.global_limits.unwrap();
    assert_eq!(g.key_prefix, "switchyard");
    assert_eq!(g.sync_interval.as_millis(), 100);
    assert_eq!(g.slice, 0.1);
    assert_eq!(g.on_unavailable, FailMode::Open);
    assert!(g.password.is_none());
}

#[test]
fn bad_fields_name_their_path() {
    let errs = errors(&with(
        "global_limits: { redis_url: \"http://x/0\", key_prefix: \"a b\", sync_interval_ms: 1, slice: 1.5, on_unavailable: maybe }\n",
    ));
    for want in [
        "global_limits.redis_url: must start with redis://",
        "global_limits.key_prefix: must be non-empty",
        "global_limits.sync_interval_ms: must be 10..=10000",
        "global_limits.slice: must be a share of the limit",
        "global_limits.on_unavailable: `maybe` is neither `open` nor `closed`",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "no `{want}` in {errs:?}"
        );
    }
    let errs = errors(&with(
        "global_limits: { redis_url: \"redis://:hunter2@127.0.0.1:6379/x\" }\n",
    ));
    assert!(
        errs.iter()
            .any(|e| e.contains("redis_url: holds a password")),
        "{errs:?}"
    );
    assert!(errs.iter().all(|e| !e.contains("hunter2")), "{errs:?}");
    let errs = errors(&with(
        "global_limits: { redis_url: \"redis://h/x\", rpm: 1 }\n",
    ));
    assert!(errs.iter().any(|e| e.contains("rpm")), "{errs:?}");
}

#[test]
fn a_tenant_overrides_the_failure_mode_and_the_password_never_prints() {
    let text = with(
        "global_limits: { redis_url: \"redis://127.0.0.1:6399/0\", password: \"${KEY}\" }\n\
         tenants:\n  - name: a\n    keys: [{ id: k1, key: k1-secret }]\n    requests_per_minute: 60\n    on_redis_unavailable: closed\n  - name: b\n    keys: [{ id: k2, key: k2-secret }]\n",
    );
    let c = load_str(&text, &env).unwrap();
    assert_eq!(c.tenants[0].on_redis_unavailable, Some(FailMode::Closed));
    assert_eq!(c.tenants[1].on_redis_unavailable, None);
    assert!(c.tenants[0].limited() && !c.tenants[1].limited());
    let out = serde_yaml_ng::to_string(&c).unwrap();
    assert!(!out.contains("sk-secret-value"), "{out}");
    assert!(out.contains("on_redis_unavailable: closed"), "{out}");
    let again = load_str(&out.replace("<redacted>", "filled"), &|_| None).unwrap();
    assert_eq!(
        again.global_limits,
        c.global_limits.map(|mut g| {
            g.password = Some(crate::Secret::new("filled"));
            g
        })
    );
    let errs = errors(&text.replace("on_redis_unavailable: closed", "on_redis_unavailable: shut"));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("tenants[0].on_redis_unavailable: `shut`")),
        "{errs:?}"
    );
}
