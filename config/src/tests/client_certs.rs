//! `server.tls.client_ca_file` / `client_auth` and
//! `tenants[i].client_cert_names`: a CA loads into a verifier, bad values
//! fail at their field, names need the CA and belong to one tenant, and
//! the output loads again.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use super::resolve::temp_file;
use super::{GOOD, env, errors};
use crate::{ClientAuth, load_str};

fn pem_pair(ca: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// GOOD with `server.tls` (extra keys `tls_extra`) and `tenants`.
fn yaml(tls_extra: &str, tenants: &str) -> String {
    let (cert, key) = pem_pair(false);
    let (c, k) = (temp_file(cert.as_bytes()), temp_file(key.as_bytes()));
    let tls = format!(
        "admin_listen: 127.0.0.1:9090\n  tls: {{ cert_file: \"{}\", key_file: \"{}\"{tls_extra} }}",
        c.display(),
        k.display()
    );
    format!(
        "{}tenants:\n{tenants}",
        GOOD.replace("admin_listen: 127.0.0.1:9090", &tls)
    )
}

fn ca_file() -> std::path::PathBuf {
    temp_file(pem_pair(true).0.as_bytes())
}

#[test]
fn a_client_ca_loads_and_tenants_may_be_named_by_certificate_only() {
    let ca = ca_file();
    let text = yaml(
        &format!(
            ", client_ca_file: \"{}\", client_auth: optional",
            ca.display()
        ),
        "  - { name: svc, client_cert_names: [svc.internal, \"spiffe://x/svc\"] }\n",
    );
    let config = load_str(&text, &env).unwrap();
    let client = config.server.tls.as_ref().unwrap().client.as_ref().unwrap();
    assert_eq!(client.client_auth, ClientAuth::Optional);
    assert_eq!(config.tenants[0].client_cert_names.len(), 2);
    assert!(config.tenants[0].keys.is_empty());
    // The output loads again, CA and mode included.
    let out = serde_yaml_ng::to_string(&config).unwrap();
    assert!(
        out.contains("client_ca_file") && out.contains("client_auth: optional"),
        "{out}"
    );
    // (GOOD's replica secret comes out redacted and must be put back.)
    let again = load_str(&out.replace("<redacted>", "${KEY}"), &env).unwrap();
    assert!(again.server.tls.unwrap().client.is_some());
    // `required` is the default.
    let text = yaml(&format!(", client_ca_file: \"{}\"", ca.display()), "  []\n");
    let config = load_str(&text.replace("tenants:\n  []\n", ""), &env).unwrap();
    let client = config.server.tls.unwrap().client.unwrap();
    assert_eq!(client.client_auth, ClientAuth::Required);
}

#[test]
fn bad_modes_missing_cas_and_shared_names_fail_at_their_field() {
    let ca = ca_file();
    let with_ca = format!(", client_ca_file: \"{}\"", ca.display());
    let tenant = "  - { name: a, keys: [{ id: k, key: kk }] }\n";
    let errs = errors(&yaml(&format!("{with_ca}, client_auth: sometimes"), tenant));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.tls.client_auth: `sometimes`")),
        "{errs:?}"
    );
    let errs = errors(&yaml(", client_auth: optional", tenant));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.tls.client_auth: needs client_ca_file")),
        "{errs:?}"
    );
    let errs = errors(&yaml(", client_ca_file: \"/nonexistent/ca.pem\"", tenant));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.tls.client_ca_file: cannot read")),
        "{errs:?}"
    );
    let errs = errors(&yaml("", "  - { name: a, client_cert_names: [x] }\n"));
    assert!(
        errs.iter().any(|e| e.starts_with("tenants[0].client_cert_names: needs server.tls.client_ca_file")),
        "{errs:?}"
    );
    let errs = errors(&yaml(
        &with_ca,
        "  - { name: a, client_cert_names: [x] }\n  - { name: b, client_cert_names: [\"\", x] }\n",
    ));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("tenants[1].client_cert_names[0]: must not be empty")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("tenants[1].client_cert_names[1]: `x` is already tenant `a`'s")),
        "{errs:?}"
    );
    let errs = errors(&yaml(&with_ca, "  - { name: a }\n"));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("tenants[0].keys: at least one key")),
        "{errs:?}"
    );
}
