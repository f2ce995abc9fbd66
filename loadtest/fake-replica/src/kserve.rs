//! KServe v2 / Triton-shaped answers.

use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Shared;
use crate::handler::{FakeBody, Kind, error, json};
use crate::openai::quote;

/// What a `/v2/models/...` path asks for.
pub(crate) enum Route {
    Infer,
    Metadata(String),
    Ready,
    NotFound,
}

pub(crate) fn route(method: &Method, path: &str) -> Route {
    let rest = path.trim_start_matches("/v2/models/");
    let segs: Vec<&str> = rest.split('/').collect();
    let tail: &[&str] = match segs.as_slice() {
        [_, "versions", _, tail @ ..] => tail,
        [_, tail @ ..] => tail,
        [] => &[],
    };
    match (method, tail) {
        (&Method::POST, ["infer"]) => Route::Infer,
        (&Method::GET, ["ready"]) => Route::Ready,
        (&Method::GET, []) => Route::Metadata(model_name(path)),
        _ => Route::NotFound,
    }
}

/// The `{name}` of `/v2/models/{name}/...`.
pub(crate) fn model_name(path: &str) -> String {
    path.trim_start_matches("/v2/models/")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned()
}

pub(crate) fn metadata(shared: &Shared, name: &str) -> Response<FakeBody> {
    let body = format!(
        r#"{{"name":{},"versions":["1"],"platform":"fake","inputs":[],"outputs":[]}}"#,
        quote(name)
    );
    json(shared, StatusCode::OK, body)
}

#[derive(Deserialize)]
struct InferRequest<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    inputs: Vec<Input<'a>>,
}

#[derive(Deserialize)]
struct Input<'a> {
    #[allow(dead_code)]
    name: &'a str,
    #[serde(borrow)]
    shape: &'a RawValue,
    datatype: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// Echoes the first input back as `output0`.
pub(crate) fn infer(shared: &Shared, name: &str, body: &[u8]) -> Response<FakeBody> {
    let req: InferRequest<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("invalid inference request: {e}");
            return error(shared, Kind::Kserve, StatusCode::BAD_REQUEST, &msg);
        }
    };
    let Some(first) = req.inputs.first() else {
        return error(
            shared,
            Kind::Kserve,
            StatusCode::BAD_REQUEST,
            "`inputs` is empty",
        );
    };
    let id = req
        .id
        .map(|id| format!(r#","id":{}"#, id.get()))
        .unwrap_or_default();
    let body = format!(
        r#"{{"model_name":{},"model_version":"1"{id},"outputs":[{{"name":"output0","shape":{},"datatype":{},"data":{}}}]}}"#,
        quote(name),
        first.shape.get(),
        quote(first.datatype),
        first.data.get()
    );
    json(shared, StatusCode::OK, body)
}
