#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use switchyard_config::key_digest;
use switchyard_proxy::NoObserver;

use super::*;

fn proxy(tenants: &str) -> Arc<Proxy> {
    let yaml = format!(
        "clouds: {{ c: {{ provider: private }} }}\n\
         models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]\n\
         replicas: [{{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }}]\n\
         tenants: {tenants}\n"
    );
    let config = switchyard_config::load_str(&yaml, &|_| None).unwrap();
    Arc::new(Proxy::new(config, Arc::new(NoObserver)).unwrap())
}

fn temp_file(tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("sy-keys-{tag}-{}-{n}.json", std::process::id()))
}

/// The tenant a key authenticates as right now (at `now_ms`).
fn who(p: &Proxy, key: &str, now_ms: u64) -> Option<String> {
    let snap = p.snapshot();
    p.runtime_keys()
        .tenant(&snap.config, &key_digest(key.as_bytes()), || now_ms)
        .map(|(t, _)| t.name.clone())
}

const TENANTS: &str = "[{ name: a, keys: [{ id: x, key: cfg }] }]";

#[test]
fn keys_are_long_random_and_stored_only_as_hashes() {
    let p = proxy(TENANTS);
    let store = KeyStore::new(Arc::clone(&p));
    let file = temp_file("hash");
    store.open(&file, 0).unwrap();
    let one = store.create("a", Some("ci".into()), 10).unwrap();
    let two = store.create("a", None, 11).unwrap();
    assert!(one.key.starts_with(PREFIX) && one.key.len() == PREFIX.len() + 43);
    assert!(
        one.key[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
    );
    assert_ne!(one.key, two.key);
    assert_ne!(one.record.id, two.record.id);
    assert!(one.key.starts_with(&one.record.prefix));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(&one.key[PREFIX.len()..]),
        "the key is never written"
    );
    assert!(text.contains(&one.record.hash));
    assert_eq!(who(&p, &one.key, 12).as_deref(), Some("a"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner only");
    }
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn revoke_ends_a_key_at_once_and_the_state_survives_a_restart() {
    let file = temp_file("restart");
    let p = proxy(TENANTS);
    let store = KeyStore::new(Arc::clone(&p));
    store.open(&file, 0).unwrap();
    let keep = store.create("a", None, 1).unwrap();
    let gone = store.create("a", None, 2).unwrap();
    let rec = store.revoke(&gone.record.id, 3).unwrap();
    assert_eq!(rec.revoked_at_ms, Some(3));
    assert_eq!(who(&p, &gone.key, 3), None);
    assert!(matches!(
        store.revoke(&gone.record.id, 4),
        Err(KeyError::Revoked(_))
    ));
    assert!(matches!(
        store.revoke("nope", 4),
        Err(KeyError::NotFound(_))
    ));

    // A new process with the same file.
    let p2 = proxy(TENANTS);
    let store2 = KeyStore::new(Arc::clone(&p2));
    assert_eq!(store2.open(&file, 5).unwrap(), 2);
    assert_eq!(who(&p2, &keep.key, 5).as_deref(), Some("a"));
    assert_eq!(who(&p2, &gone.key, 5), None);
    assert_eq!(store2.list(), store.list());
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn rotate_with_grace_keeps_the_old_key_until_then() {
    let file = temp_file("rotate");
    let p = proxy(TENANTS);
    let store = KeyStore::new(Arc::clone(&p));
    store.open(&file, 0).unwrap();
    let old = store.create("a", Some("svc".into()), 0).unwrap();
    let (new, was) = store.rotate(&old.record.id, Some(1_000), 100).unwrap();
    assert_eq!(was.expires_at_ms, Some(1_100));
    assert_eq!(new.record.replaces.as_deref(), Some(old.record.id.as_str()));
    assert_eq!(new.record.name.as_deref(), Some("svc"));
    assert_eq!(who(&p, &old.key, 1_099).as_deref(), Some("a"));
    assert_eq!(who(&p, &old.key, 1_100), None);
    assert_eq!(who(&p, &new.key, 1_100).as_deref(), Some("a"));
    // Without grace, the old key ends now.
    let (newer, _) = store.rotate(&new.record.id, None, 200).unwrap();
    assert_eq!(who(&p, &new.key, 200), None);
    assert_eq!(who(&p, &newer.key, 200).as_deref(), Some("a"));
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn only_configured_tenants_get_keys_and_only_with_a_state_file() {
    let p = proxy(TENANTS);
    let store = KeyStore::new(Arc::clone(&p));
    assert!(matches!(
        store.create("a", None, 0),
        Err(KeyError::NoStateFile)
    ));
    let file = temp_file("tenant");
    store.open(&file, 0).unwrap();
    assert!(matches!(
        store.create("b", None, 0),
        Err(KeyError::UnknownTenant(_))
    ));
    assert!(matches!(
        store.create("a", Some("x\ny".into()), 0),
        Err(KeyError::Invalid { field: "name", .. })
    ));
    assert!(store.list().is_empty(), "nothing written by a refusal");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_it() {
    let file = temp_file("corrupt");
    let store = KeyStore::new(proxy(TENANTS));
    for text in [
        "{not json",
        r#"{"version": 2, "keys": []}"#,
        r#"{"version": 1, "keys": [{"id": "k", "tenant": "a", "prefix": "sk-sy-", "hash": "md5:00", "created_at_ms": 0}]}"#,
    ] {
        std::fs::write(&file, text).unwrap();
        let e = store.open(&file, 0).unwrap_err().to_string();
        assert!(e.contains(&file.display().to_string()), "{e}");
    }
    std::fs::remove_file(&file).unwrap();
    // An unwritable location fails the change and changes nothing.
    let store = KeyStore::new(proxy(TENANTS));
    let missing_dir = temp_file("dir").join("keys.json");
    store.open(&missing_dir, 0).unwrap();
    assert!(matches!(
        store.create("a", None, 0),
        Err(KeyError::File { .. })
    ));
    assert!(store.list().is_empty());
}
