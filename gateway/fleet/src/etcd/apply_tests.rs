//! The applier without etcd: differences go through the controller, and
//! what did not change is not touched.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use switchyard_control::Controller;
use switchyard_control::keys::KeyStore;
use switchyard_control::reload::Source;
use switchyard_proxy::{NoObserver, Proxy};
use tokio_util::task::TaskTracker;

use crate::etcd::apply::Applier;
use crate::etcd::layout::Layout;
use crate::etcd::state::Desired;

const DOC: &str = "models:\n  - name: chat\n    versions: [{ name: v1, weight: 90 }, { name: v2, weight: 10 }]\n\
clouds: { c: { provider: private } }\n\
tenants: [{ name: t, keys: [{ id: k1, key: sk-test-0123456789abcdef }] }]\n\
replicas:\n  - { id: a, model: chat, version: v1, cloud: c, url: \"http://127.0.0.1:1\" }\n  \
- { id: b, model: chat, version: v2, cloud: c, url: \"http://127.0.0.1:2\" }\n";

fn applier() -> Applier {
    let config = switchyard_config::load_str(DOC, &|_| None).unwrap();
    let proxy = Arc::new(Proxy::new(config, Arc::new(NoObserver)).unwrap());
    let control = Arc::new(Controller::new(
        Arc::clone(&proxy),
        Arc::default(),
        TaskTracker::new(),
    ));
    Applier {
        control,
        keys: Arc::new(KeyStore::new(proxy)),
        source: Source::environment(),
    }
}

fn desired(kvs: &[(&str, &str)]) -> Desired {
    let l = Layout::new("/p");
    Desired::from_kvs(
        &l,
        kvs.iter()
            .enumerate()
            .map(|(i, (k, v))| (*k, *v, i as i64 + 1)),
    )
}

fn generation(a: &Applier) -> u64 {
    a.control.proxy().snapshot().generation
}

fn weight(a: &Applier, version: &str) -> u32 {
    let snap = a.control.proxy().snapshot();
    let m = snap.config.model("chat").unwrap();
    m.versions
        .iter()
        .find(|v| v.name == version)
        .unwrap()
        .weight
}

#[test]
fn a_relist_of_what_serves_publishes_nothing() {
    let a = applier();
    let base = desired(&[("/p/config", DOC)]);
    let served = Desired {
        config: base.config.clone(),
        ..Desired::default()
    };
    let before = generation(&a);
    let out = a.apply(&served, &base);
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    // The same document rewritten (a new mod_revision): still nothing.
    let rewritten = desired(&[("/p/x", ""), ("/p/config", DOC)]);
    let out = a.apply(&base, &rewritten);
    assert!(out.refused.is_empty());
    assert_eq!(
        generation(&a),
        before,
        "no generation for an identical state"
    );
}

#[test]
fn control_keys_apply_and_their_removal_undoes_them() {
    let a = applier();
    let base = desired(&[("/p/config", DOC)]);
    let with = desired(&[
        ("/p/config", DOC),
        ("/p/control/weights/chat", r#"{"v2":100}"#),
        ("/p/control/stable/chat", "v2"),
        ("/p/control/cordons/a", ""),
    ]);
    let out = a.apply(&base, &with);
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(weight(&a, "v2"), 100);
    assert_eq!(a.control.state().stable("chat"), Some("v2"));
    let snap = a.control.proxy().snapshot();
    let cordoned = |id: &str| {
        snap.table
            .entries()
            .iter()
            .any(|e| e.replica.id == id && e.stats.is_cordoned())
    };
    assert!(cordoned("a") && !cordoned("b"));
    let out = a.apply(&with, &base);
    assert!(out.refused.is_empty());
    assert_eq!(weight(&a, "v2"), 10, "the document's weights serve again");
    assert!(!cordoned("a"));
}

#[test]
fn bad_values_are_refused_with_their_key_and_the_rest_applies() {
    let a = applier();
    let base = desired(&[("/p/config", DOC)]);
    let bad_doc = DOC.replace("weight: 90", "weight: 900");
    let next = desired(&[
        ("/p/config", &bad_doc),
        ("/p/control/weights/chat", r#"{"v9":100}"#),
        ("/p/control/cordons/b", ""),
    ]);
    let out = a.apply(&base, &next);
    let paths: Vec<&str> = out.refused.iter().map(|e| e.path.as_str()).collect();
    assert!(!out.config_applied);
    assert!(paths.contains(&"models[0].versions[0].weight"), "{paths:?}");
    assert!(paths.contains(&"control/weights/chat"), "{paths:?}");
    assert_eq!(weight(&a, "v1"), 90, "the old document serves");
    let snap = a.control.proxy().snapshot();
    assert!(
        snap.table
            .entries()
            .iter()
            .any(|e| e.replica.id == "b" && e.stats.is_cordoned())
    );
}

#[test]
fn key_records_replace_the_store() {
    let a = applier();
    let base = desired(&[("/p/config", DOC)]);
    let new = a.keys.prepare_create("t", Some("ci".into()), 1).unwrap();
    let record = serde_json::to_string(&new.record).unwrap();
    let key = format!("/p/keys/{}", new.record.id);
    let next = desired(&[("/p/config", DOC), (&key, &record), ("/p/keys/junk", "{")]);
    let out = a.apply(&base, &next);
    assert_eq!(a.keys.list(), vec![new.record.clone()]);
    assert_eq!(out.refused.len(), 1);
    assert_eq!(out.refused[0].path, "keys/junk");
}
