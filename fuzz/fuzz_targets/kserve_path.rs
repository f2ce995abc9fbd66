//! The request classifier, KServe v2 paths above all
//! (`/v2/models/{name}[/versions/{v}][/infer|/ready]`): any method and
//! path is classified or refused, never a panic; a KServe model it names
//! is one path segment with at most one version pin (`name@v`, from
//! `/versions/v` or written so), never empty; and
//! the same path under `OPTIONS` is a preflight for the method it takes.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use switchyard_proxy::endpoint::Endpoint;

const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PUT, Method::OPTIONS];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    let method = &METHODS[usize::from(pick) % METHODS.len()];
    let Ok(endpoint) = Endpoint::classify(method, path) else {
        return;
    };
    let model = match &endpoint {
        Endpoint::KserveInfer { model }
        | Endpoint::KserveMetadata { model }
        | Endpoint::KserveModelReady { model } => model,
        _ => return,
    };
    assert!(path.starts_with("/v2/models/"), "{path}");
    assert!(!model.is_empty() && !model.starts_with('@'), "{path} -> {model}");
    assert!(!model.contains('/'), "{path} -> {model}");
    assert!(model.matches('@').count() <= 1, "one pin at most: {path} -> {model}");
    if let Some((name, version)) = model.split_once('@') {
        let pinned = [format!("/{name}/versions/{version}"), format!("/{name}@{version}")];
        assert!(pinned.iter().any(|p| path.contains(p.as_str())), "{path} -> {model}");
    }
    let preflight = Endpoint::classify(&Method::OPTIONS, path);
    assert!(matches!(preflight, Ok(Endpoint::Preflight { .. })), "{path}");
});
