use serde_json::json;
use switchyard_config::jwt::Jwks;
use tokio::time::Instant;

use super::super::keys::Fetched;
use super::super::test_signer::Signer;
use super::super::{JwtAuth, looks_like_jwt};
use super::JwtError;

const NOW: f64 = 1_800_000_000.0;

fn config(extra: &str) -> switchyard_config::Config {
    config_algs("[ES256, EdDSA]", extra)
}

fn config_algs(algs: &str, extra: &str) -> switchyard_config::Config {
    let yaml = format!(
        "clouds: {{ c: {{ provider: private }} }}\nmodels: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]\nreplicas: [{{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }}]\n\
         tenants: [{{ name: acme }}, {{ name: globex }}]\n\
         auth:\n  jwt:\n\
         \x20   - {{ issuer: https://idp.test, audiences: [gw, other], jwks_uri: \"http://127.0.0.1:1/k\",\n\
         \x20        algorithms: {algs}, tenant_claim: org.name{extra} }}\n\
         \x20   - {{ issuer: https://second.test, audiences: [gw], jwks_uri: \"http://127.0.0.1:1/j\",\n\
         \x20        tenant: globex, leeway_s: 0 }}\n"
    );
    switchyard_config::load_str(&yaml, &|_| None).unwrap()
}

/// A verifier for `config` whose first issuer's keys are `signers`'.
fn auth(config: &switchyard_config::Config, signers: &[&Signer]) -> JwtAuth {
    let auth = JwtAuth::prepare(config, None).unwrap();
    let (issuer, store) = auth.issuers().next().unwrap();
    let keys = Jwks::parse(Signer::jwks(signers).as_bytes()).unwrap();
    store.record(issuer, Instant::now(), Fetched::Keys(keys, None));
    auth
}

fn claims(org: &str) -> serde_json::Value {
    json!({"iss": "https://idp.test", "aud": "gw", "exp": NOW + 300.0, "iat": NOW,
           "org": {"name": org}})
}

#[test]
fn a_valid_token_names_its_tenant_and_is_then_served_from_the_cache() {
    let k = Signer::es256("k1");
    let a = auth(&config(""), &[&k]);
    let t = k.token(&claims("globex"));
    assert_eq!(a.verify(&t, NOW), Ok(1));
    assert_eq!(a.cached_tokens(), 1);
    assert_eq!(a.verify(&t, NOW + 1.0), Ok(1));
    let mut multi = claims("acme");
    multi["aud"] = json!(["someone-else", "other"]);
    assert_eq!(
        a.verify(&k.token(&multi), NOW),
        Ok(0),
        "one accepted aud suffices"
    );
    assert!(looks_like_jwt(t.as_bytes()));
    assert!(!looks_like_jwt(b"sk-live-abc.def"));
}

#[test]
fn time_claims_are_checked_with_the_leeway_even_for_cached_tokens() {
    let k = Signer::eddsa("ed");
    let a = auth(&config(""), &[&k]);
    let t = k.token(&claims("acme"));
    assert_eq!(a.verify(&t, NOW + 359.0), Ok(0), "within 60 s of exp");
    assert_eq!(
        a.verify(&t, NOW + 360.0),
        Err(JwtError::Expired),
        "cached, still expires"
    );
    let fresh = Signer::eddsa("ed");
    let a = auth(&config(""), &[&fresh]);
    assert_eq!(
        a.verify(&fresh.token(&claims("acme")), NOW + 400.0),
        Err(JwtError::Expired)
    );
    let mut c = claims("acme");
    c["nbf"] = json!(NOW + 100.0);
    assert_eq!(a.verify(&fresh.token(&c), NOW), Err(JwtError::NotYetValid));
    let mut c = claims("acme");
    c["iat"] = json!(NOW + 100.0);
    assert_eq!(
        a.verify(&fresh.token(&c), NOW),
        Err(JwtError::IssuedInFuture)
    );
    let mut c = claims("acme");
    c["exp"] = json!("never");
    assert_eq!(
        a.verify(&fresh.token(&c), NOW),
        Err(JwtError::Claim("exp".into()))
    );
    let mut c = claims("acme");
    c["nbf"] = json!("later");
    assert!(matches!(
        a.verify(&fresh.token(&c), NOW),
        Err(JwtError::Claim(_))
    ));
}

#[test]
fn issuer_audience_signature_and_header_are_checked() {
    let k = Signer::es256("k1");
    let a = auth(&config(""), &[&k]);
    let mut c = claims("acme");
    c["aud"] = json!("another-service");
    assert_eq!(a.verify(&k.token(&c), NOW), Err(JwtError::Audience));
    let mut c = claims("acme");
    c["iss"] = json!("https://evil.test");
    assert_eq!(a.verify(&k.token(&c), NOW), Err(JwtError::UntrustedIssuer));
    let mut c = claims("acme");
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        a.verify(&k.token(&c), NOW),
        Err(JwtError::Claim("aud".into()))
    );

    let impostor = Signer::es256("k1");
    let forged = impostor.token(&claims("acme"));
    assert_eq!(a.verify(&forged, NOW), Err(JwtError::Signature));
    // The genuine signature glued to other claims.
    let good = k.token(&claims("acme"));
    let other = k.token(&claims("globex"));
    let spliced = format!(
        "{}.{}",
        other.rsplit_once('.').unwrap().0,
        good.rsplit_once('.').unwrap().1
    );
    a.verify(&good, NOW).unwrap();
    assert_eq!(a.verify(&spliced, NOW), Err(JwtError::Signature));

    for alg in ["none", "HS256", "RS256"] {
        let h = json!({"alg": alg, "kid": "k1"});
        let e = a
            .verify(&k.token_with(&h, &claims("acme")), NOW)
            .unwrap_err();
        assert!(
            matches!(e, JwtError::Algorithm | JwtError::Malformed),
            "{alg}: {e:?}"
        );
    }
    let h = json!({"alg": "ES256", "kid": "k1", "crit": ["exp-ext"]});
    assert_eq!(
        a.verify(&k.token_with(&h, &claims("acme")), NOW),
        Err(JwtError::Critical)
    );
    assert_eq!(a.verify("eyJ.e30.", NOW), Err(JwtError::Malformed));
}

#[test]
fn an_unknown_kid_is_refused_and_asks_for_a_refetch() {
    let k = Signer::es256("k1");
    let a = auth(&config(""), &[&k]);
    let (issuer, store) = a.issuers().next().unwrap();
    let t0 = Instant::now();
    assert!(store.due(issuer, t0).is_err(), "just fetched");
    let rotated = Signer::es256("k2");
    assert_eq!(
        a.verify(&rotated.token(&claims("acme")), NOW),
        Err(JwtError::UnknownKey)
    );
    let min = issuer.min_refetch;
    assert!(
        store.due(issuer, t0 + min).is_ok(),
        "refetch after min_refetch, not refresh"
    );
}

#[test]
fn tenants_come_from_a_claim_a_map_or_the_issuer() {
    let k = Signer::es256("k1");
    let a = auth(&config(""), &[&k]);
    let e = a.verify(&k.token(&claims("initech")), NOW).unwrap_err();
    assert_eq!(
        e,
        JwtError::UnknownTenant("`initech` (claim `org.name`)".into())
    );
    let mut c = claims("x");
    c.as_object_mut().unwrap().remove("org");
    assert!(matches!(
        a.verify(&k.token(&c), NOW),
        Err(JwtError::UnknownTenant(_))
    ));

    let a = auth(&config(", tenant_map: { \"org-42\": acme }"), &[&k]);
    assert_eq!(a.verify(&k.token(&claims("org-42")), NOW), Ok(0));
    assert!(
        a.verify(&k.token(&claims("acme")), NOW).is_err(),
        "only mapped values"
    );

    // The second issuer: a fixed tenant, no leeway.
    let cfg = config("");
    let a = JwtAuth::prepare(&cfg, None).unwrap();
    let (issuer, store) = a.issuers().nth(1).unwrap();
    let k2 = Signer::es256("s");
    let keys = Jwks::parse(Signer::jwks(&[&k2]).as_bytes()).unwrap();
    store.record(issuer, Instant::now(), Fetched::Keys(keys, None));
    let c = json!({"iss": "https://second.test", "aud": "gw", "exp": NOW + 1.0});
    assert_eq!(a.verify(&k2.token(&c), NOW), Ok(1));
    assert_eq!(a.verify(&k2.token(&c), NOW + 1.0), Err(JwtError::Expired));
}

#[test]
fn rs256_the_common_idp_algorithm_verifies_and_pins_its_family() {
    let rsa = Signer::rs256("rsa");
    let a = auth(&config_algs("[RS256, ES256]", ""), &[&rsa]);
    assert_eq!(a.verify(&rsa.token(&claims("acme")), NOW), Ok(0));
    // An RSA key never verifies an ES256 token, whatever the header says.
    let es = Signer::es256("rsa");
    assert_eq!(
        a.verify(&es.token(&claims("acme")), NOW),
        Err(JwtError::Algorithm)
    );
}

#[test]
fn a_reload_keeps_the_fetched_keys_of_an_unchanged_issuer() {
    let k = Signer::es256("k1");
    let cfg = config("");
    let a = auth(&cfg, &[&k]);
    let b = JwtAuth::prepare(&cfg, Some(&a)).unwrap();
    assert_eq!(b.verify(&k.token(&claims("acme")), NOW), Ok(0));
    assert!(std::sync::Arc::ptr_eq(a.wake(), b.wake()));
}
