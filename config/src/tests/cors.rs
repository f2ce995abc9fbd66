//! `server.cors`: defaults, normalisation, and every error at its path.

use super::{GOOD, env, errors};
use crate::load_str;

fn with_cors(cors: &str) -> String {
    GOOD.replace(
        "admin_listen: 127.0.0.1:9090",
        &format!("admin_listen: 127.0.0.1:9090\n  cors: {cors}"),
    )
}

#[test]
fn cors_is_off_unless_configured_and_defaults_its_max_age() {
    assert!(load_str(GOOD, &env).unwrap().server.cors.is_none());
    let c = load_str(
        &with_cors("{ allow_origins: [\"https://App.Example.com\"], allow_headers: [X-Trace] }"),
        &env,
    )
    .unwrap();
    let cors = c.server.cors.unwrap();
    assert_eq!(cors.allow_origins, ["https://app.example.com"]);
    assert_eq!(cors.allow_headers, ["x-trace"]);
    assert_eq!(cors.max_age_s, crate::defaults::CORS_MAX_AGE_S);
    assert!(cors.allows("https://app.example.com"));
    assert!(!cors.allows("https://evil.example.com"));
    let any = load_str(&with_cors("{ allow_origins: [\"*\"] }"), &env).unwrap();
    assert!(any.server.cors.unwrap().allows("https://anything.example"));
}

#[test]
fn bad_cors_fields_name_their_path() {
    let errs = errors(&with_cors(
        "{ allow_origins: [\"*\", \"app.example.com\"], allow_headers: [\"bad name\"], max_age_s: 90000 }",
    ));
    for want in [
        "server.cors.allow_origins: `*` allows every origin",
        "server.cors.allow_origins[1]: `app.example.com` is not an origin",
        "server.cors.allow_headers[0]: ",
        "server.cors.max_age_s: must be 0..=86400",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(want)), "{want}: {errs:?}");
    }
    let errs = errors(&with_cors("{ allow_origins: [] }"));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.cors.allow_origins: must name")),
        "{errs:?}"
    );
    let errs = errors(&with_cors("{ allow_origin: [\"*\"] }"));
    assert!(errs.iter().any(|e| e.contains("allow_origin")), "{errs:?}");
}
