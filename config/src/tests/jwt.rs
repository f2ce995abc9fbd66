//! `auth.jwt`: defaults, a `jwks_file` parsed at load, keyless tenants,
//! the output loading again, and every error at its path.

use super::resolve::temp_file;
use super::{GOOD, env, errors};
use crate::jwt::{Algorithm, JwksSource};
use crate::load_str;

const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","alg":"ES256",
    "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fn with_jwt(issuers: &str) -> String {
    format!(
        "{GOOD}tenants:\n  - {{ name: acme }}\n  - {{ name: globex }}\nauth:\n  jwt:\n{issuers}"
    )
}

#[test]
fn issuers_load_with_defaults_and_a_jwks_file_is_parsed() {
    let file = temp_file(JWKS.as_bytes());
    let c = load_str(
        &with_jwt(&format!(
            "    - {{ issuer: https://idp.example, audiences: [gw], jwks_uri: https://idp.example/jwks, tenant_claim: org.id,\n\
             \x20       tenant_map: {{ \"42\": acme }} }}\n\
             \x20   - {{ issuer: partner, audiences: [gw], jwks_file: \"{}\", tenant: globex, algorithms: [ES256, EdDSA],\n\
             \x20       leeway_s: 0, jwks_refresh_s: 60, jwks_min_refetch_ms: 500 }}\n",
            file.display()
        )),
        &env,
    )
    .unwrap();
    let [a, b] = &c.auth.jwt[..] else {
        panic!("{:?}", c.auth.jwt)
    };
    assert_eq!(a.algorithms, [Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(a.leeway, crate::defaults::JWT_LEEWAY);
    assert_eq!(a.refresh, crate::defaults::JWKS_REFRESH);
    assert_eq!(a.min_refetch, crate::defaults::JWKS_MIN_REFETCH);
    assert_eq!(a.tenant_claim.as_ref().unwrap().as_str(), "org.id");
    let JwksSource::File(f) = &b.jwks else {
        panic!("{:?}", b.jwks)
    };
    assert!(f.keys.find(Some("a")).is_some());
    assert_eq!(b.min_refetch.as_millis(), 500);
    assert!(
        c.tenants[0].keys.is_empty(),
        "a tenant may have tokens only"
    );

    let yaml = serde_yaml_ng::to_string(&c).unwrap();
    let again = load_str(&yaml.replace("<redacted>", "sk-filled-in"), &env).unwrap();
    let back = serde_yaml_ng::to_string(&again).unwrap();
    assert_eq!(yaml, back, "the output loads again to the same config");
}

#[test]
fn bad_issuers_name_their_path() {
    let errs = errors(&with_jwt(
        "    - { issuer: a, jwks_uri: \"http://idp.example/jwks\", algorithms: [HS256, none, ES256],\n\
         \x20       tenant_claim: \"org..id\", leeway_s: 3600 }\n\
         \x20   - { issuer: a, audiences: [gw], jwks_file: /nonexistent/jwks.json, tenant: initech,\n\
         \x20       tenant_map: { x: nobody } }\n\
         \x20   - { issuer: b, audiences: [gw], jwks_uri: https://b/jwks, jwks_file: f, tenant: acme, tenant_claim: t }\n",
    ));
    for want in [
        "auth.jwt[0].audiences: list at least one",
        "auth.jwt[0].jwks_uri: must be https",
        "auth.jwt[0].algorithms[0]: `HS256` is a shared-secret algorithm",
        "auth.jwt[0].algorithms[1]: `none` is not supported",
        "auth.jwt[0].tenant_claim: `org..id` is not a claim name",
        "auth.jwt[0].leeway_s: must be 0..=600",
        "auth.jwt[1].issuer: duplicate issuer `a`",
        "auth.jwt[1].jwks_file: cannot read /nonexistent/jwks.json",
        "auth.jwt[1].tenant: unknown tenant `initech`",
        "auth.jwt[1].tenant_map.x: unknown tenant `nobody`",
        "auth.jwt[2]: needs exactly one of jwks_uri, jwks_file",
        "auth.jwt[2]: needs exactly one of tenant, tenant_claim",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(want)), "{want}: {errs:?}");
    }

    let not_jwks = temp_file(b"{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}");
    let errs = errors(&with_jwt(&format!(
        "    - {{ issuer: a, audiences: [gw], jwks_file: \"{}\", tenant: acme }}\n",
        not_jwks.display()
    )));
    assert!(
        errs.iter()
            .any(|e| e.contains("none of its 1 keys is a usable signing key")),
        "{errs:?}"
    );

    let no_tenants = format!(
        "{GOOD}auth:\n  jwt: [{{ issuer: a, audiences: [gw], jwks_uri: https://a/k, tenant_claim: t }}]\n"
    );
    let errs = errors(&no_tenants);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("auth.jwt: tokens are mapped to tenants")),
        "{errs:?}"
    );
    let keyless = format!("{GOOD}tenants: [{{ name: acme }}]\n");
    let errs = errors(&keyless);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("tenants[0].keys: at least one key is required")),
        "{errs:?}"
    );
}
