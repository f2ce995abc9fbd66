//! `server.tls`: a matching pair loads; a missing file, a non-PEM file and
//! a key of another certificate fail at their field.

use rcgen::{CertificateParams, KeyPair};

use super::resolve::temp_file;
use super::{GOOD, env, errors};
use crate::load_str;

fn pair() -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn with_tls(cert: &std::path::Path, key: &std::path::Path) -> String {
    GOOD.replace(
        "admin_listen: 127.0.0.1:9090",
        &format!(
            "admin_listen: 127.0.0.1:9090\n  tls: {{ cert_file: \"{}\", key_file: \"{}\" }}",
            cert.display(),
            key.display()
        ),
    )
}

#[test]
fn a_matching_certificate_and_key_load() {
    let (cert, key) = pair();
    let (c, k) = (temp_file(cert.as_bytes()), temp_file(key.as_bytes()));
    let config = load_str(&with_tls(&c, &k), &env).unwrap();
    let tls = config.server.tls.unwrap();
    assert_eq!(tls.cert_file, c);
    assert_eq!(tls.certified.cert.len(), 1);
}

#[test]
fn unreadable_unparsable_and_mismatched_files_fail_at_their_field() {
    let (cert, key) = pair();
    let (_, other_key) = pair();
    let c = temp_file(cert.as_bytes());
    let k = temp_file(key.as_bytes());
    let junk = temp_file(b"not pem");

    let errs = errors(&with_tls(std::path::Path::new("/nonexistent/cert.pem"), &k));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.tls.cert_file: cannot read")),
        "{errs:?}"
    );
    let errs = errors(&with_tls(&junk, &k));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.tls.cert_file: ") && e.contains("no PEM certificate")),
        "{errs:?}"
    );
    let errs = errors(&with_tls(&c, &junk));
    assert!(
        errs.iter().any(|e| e.starts_with("server.tls.key_file: ")),
        "{errs:?}"
    );
    let errs = errors(&with_tls(&c, &temp_file(other_key.as_bytes())));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.tls.key_file: ") && e.contains("is not the key")),
        "{errs:?}"
    );
}
