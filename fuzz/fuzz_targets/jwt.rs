//! Bytes an attacker controls on the JWT path: a bearer token (header,
//! claims, signature, all base64url JSON) and a JWKS document (an IdP's
//! answer, or whatever answers at its address). Neither may panic; a
//! token the fuzzer cannot sign must never verify.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use switchyard_config::jwt::Jwks;
use switchyard_proxy::jwt::JwtAuth;
use switchyard_proxy::jwt::keys::Fetched;

const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","alg":"ES256",
    "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
    {"kty":"OKP","crv":"Ed25519","kid":"b","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

fn auth() -> &'static JwtAuth {
    static AUTH: OnceLock<JwtAuth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let yaml = "clouds: { c: { provider: private } }\n\
            models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]\n\
            replicas: [{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }]\n\
            tenants: [{ name: t }]\n\
            auth: { jwt: [{ issuer: i, audiences: [a], jwks_uri: \"http://127.0.0.1:1/k\",\n\
                            algorithms: [ES256, EdDSA, RS256], tenant_claim: t }] }\n";
        let config = switchyard_config::load_str(yaml, &|_| None).unwrap();
        let auth = JwtAuth::prepare(&config, None).unwrap();
        let (issuer, store) = auth.issuers().next().unwrap();
        let keys = Jwks::parse(JWKS.as_bytes()).unwrap();
        store.record(issuer, tokio::time::Instant::now(), Fetched::Keys(keys, None));
        auth
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        if let Ok(keys) = Jwks::parse(rest) {
            assert!(!keys.is_empty());
            let _ = keys.find(None);
        }
    } else if let Ok(token) = std::str::from_utf8(rest) {
        assert!(
            auth().check(token, 1.8e9).is_err(),
            "a token nobody signed verified: {token}"
        );
    }
});
