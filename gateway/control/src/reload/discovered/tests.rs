//! Members through the controller: stats kept across re-resolutions,
//! removed members drain, leases expire on paused time, a failed or empty
//! resolution keeps the last good set.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

const YAML: &str = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: fixed, model: m, cloud: c, url: "http://127.0.0.1:9000" }
  - id: pool
    model: m
    cloud: c
    url: "http://pool.invalid:8000/base"
    max_concurrency: 7
    discovery: { dns: pool.invalid, port: 8001 }
  - id: reg
    model: m
    cloud: c
    url: "http://reg.invalid"
    discovery: { registration: true, max_ttl_ms: 10000, max_members: 2 }
"#;

fn controller() -> Arc<Controller> {
    Controller::for_tests(switchyard_config::load_str(YAML, &|_| None).unwrap())
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn ids(c: &Controller) -> Vec<String> {
    let snap = c.proxy().snapshot();
    let mut ids: Vec<String> = snap
        .table
        .entries()
        .iter()
        .map(|e| e.replica.id.clone())
        .collect();
    ids.sort();
    ids
}

fn stats(c: &Controller, id: &str) -> Arc<switchyard_router::ReplicaStats> {
    let snap = c.proxy().snapshot();
    let e = snap
        .table
        .entries()
        .iter()
        .find(|e| e.replica.id == id)
        .unwrap();
    Arc::clone(&e.stats)
}

#[test]
fn dns_members_take_the_template_settings_and_keep_their_stats_across_resolutions() {
    let c = controller();
    assert_eq!(ids(&c), ["fixed"], "a template is not a replica");
    c.set_dns_members(
        "pool",
        "pool.invalid",
        &addrs(&["10.0.0.2:8001", "10.0.0.1:8001"]),
    )
    .unwrap();
    assert_eq!(
        ids(&c),
        ["fixed", "pool@10.0.0.1:8001", "pool@10.0.0.2:8001"]
    );
    let snap = c.proxy().snapshot();
    let m = snap
        .config
        .replicas
        .iter()
        .find(|r| r.id == "pool@10.0.0.1:8001")
        .unwrap();
    assert_eq!(m.url.as_str(), "http://10.0.0.1:8001/base");
    assert_eq!(m.max_concurrency, 7);
    assert_eq!(m.membership, switchyard_config::Membership::Dns);
    assert_eq!(m.template.as_deref(), Some("pool"));
    let kept = stats(&c, "pool@10.0.0.1:8001");
    let gone = stats(&c, "pool@10.0.0.2:8001");
    let generation = snap.generation;

    // The same answer again: no new generation.
    let same = c
        .set_dns_members(
            "pool",
            "pool.invalid",
            &addrs(&["10.0.0.1:8001", "10.0.0.2:8001"]),
        )
        .unwrap();
    assert!(!same.changed);
    assert_eq!(c.proxy().snapshot().generation, generation);

    // One address gone, one new: the kept one keeps its stats, the gone one drains.
    c.set_dns_members(
        "pool",
        "pool.invalid",
        &addrs(&["10.0.0.1:8001", "10.0.0.3:8001"]),
    )
    .unwrap();
    assert_eq!(
        ids(&c),
        ["fixed", "pool@10.0.0.1:8001", "pool@10.0.0.3:8001"]
    );
    assert!(Arc::ptr_eq(&kept, &stats(&c, "pool@10.0.0.1:8001")));
    assert!(gone.is_draining());
    assert!(!kept.is_draining());

    // A failure keeps the last good set and shows the error.
    c.dns_failed("pool", "pool.invalid", "SERVFAIL".into());
    assert_eq!(ids(&c).len(), 3);
    let (sources, _) = c.discovery_view(Instant::now());
    let pool = sources.iter().find(|s| s.template == "pool").unwrap();
    assert_eq!(pool.members, 2);
    assert_eq!(pool.last_error.as_deref(), Some("SERVFAIL"));
}

#[test]
fn a_reload_remakes_members_from_the_new_template_and_drops_them_with_it() {
    let c = controller();
    c.set_dns_members("pool", "pool.invalid", &addrs(&["10.0.0.1:8001"]))
        .unwrap();
    let before = stats(&c, "pool@10.0.0.1:8001");
    let changed = YAML.replace("max_concurrency: 7", "max_concurrency: 9");
    c.apply(
        switchyard_config::load_str(&changed, &|_| None).unwrap(),
        Trigger::File,
    )
    .unwrap();
    let snap = c.proxy().snapshot();
    let m = snap
        .config
        .replicas
        .iter()
        .find(|r| r.id == "pool@10.0.0.1:8001")
        .unwrap();
    assert_eq!(
        m.max_concurrency, 9,
        "members follow their template's settings"
    );
    assert!(Arc::ptr_eq(&before, &stats(&c, "pool@10.0.0.1:8001")));

    let without = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: fixed, model: m, cloud: c, url: "http://127.0.0.1:9000" }]
"#;
    c.apply(
        switchyard_config::load_str(without, &|_| None).unwrap(),
        Trigger::File,
    )
    .unwrap();
    assert_eq!(ids(&c), ["fixed"]);
    assert!(before.is_draining());
}

#[tokio::test(start_paused = true)]
async fn a_lease_not_renewed_within_its_ttl_expires_and_its_member_drains() {
    let c = controller();
    let t0 = Instant::now();
    let ttl = Some(Duration::from_millis(1000));
    let r = c.register("reg", "http://10.0.1.1:8000", ttl, t0).unwrap();
    assert!(r.created);
    assert_eq!(r.id, "reg@10.0.1.1:8000");
    assert_eq!(r.url, "http://10.0.1.1:8000/");
    let again = c.register("reg", "http://10.0.1.1:8000", ttl, t0).unwrap();
    assert!(!again.created, "registering again renews");
    let member = stats(&c, "reg@10.0.1.1:8000");

    tokio::time::advance(Duration::from_millis(900)).await;
    c.heartbeat(&r.id, Instant::now()).unwrap();
    tokio::time::advance(Duration::from_millis(900)).await;
    c.expire_leases(Instant::now());
    assert!(ids(&c).contains(&r.id), "renewed 900 ms ago: still in");
    assert!(!member.is_draining());

    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(c.has_expired_leases(Instant::now()));
    c.expire_leases(Instant::now());
    assert!(!ids(&c).contains(&r.id), "expired: out of the table");
    assert!(member.is_draining());
    assert!(matches!(
        c.heartbeat(&r.id, Instant::now()),
        Err(RegisterError::UnknownLease(_))
    ));
}

#[test]
fn registrations_are_checked_and_bounded() {
    let c = controller();
    let now = Instant::now();
    let err = |r: Result<Registered, RegisterError>| r.unwrap_err();
    assert!(matches!(
        err(c.register("nope", "http://10.0.0.1:1", None, now)),
        RegisterError::UnknownTemplate(_)
    ));
    assert!(matches!(
        err(c.register("pool", "http://10.0.0.1:1", None, now)),
        RegisterError::NotRegistration(_)
    ));
    assert!(matches!(
        err(c.register("fixed", "http://10.0.0.1:1", None, now)),
        RegisterError::UnknownTemplate(_)
    ));
    for bad in [
        "http://name.example:80",
        "http://10.0.0.1:80/path",
        "ftp://10.0.0.1",
        "http://169.254.169.254",
        "https://10.0.0.1",
    ] {
        let e = err(c.register("reg", bad, None, now));
        assert_eq!(e.field(), "url", "{bad}: {e}");
    }
    let e = err(c.register(
        "reg",
        "http://10.0.0.1:1",
        Some(Duration::from_secs(11)),
        now,
    ));
    assert_eq!(e.field(), "ttl_ms");
    c.register("reg", "http://10.0.0.1:1", None, now).unwrap();
    c.register("reg", "http://10.0.0.2:1", None, now).unwrap();
    let e = err(c.register("reg", "http://10.0.0.3:1", None, now));
    assert_eq!(e.status(), 409, "{e}");
    c.deregister("reg@10.0.0.1:1").unwrap();
    assert!(!ids(&c).contains(&"reg@10.0.0.1:1".to_owned()));
    c.register("reg", "http://10.0.0.3:1", None, now).unwrap();
}
