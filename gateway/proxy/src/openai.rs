//! The OpenAI request body: find `model` (and `stream`) without building a
//! DOM, and swap the model name in place so every other byte reaches the
//! replica exactly as the client sent it.

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ProxyError;

pub mod scan;

/// What routing needs from an OpenAI request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiHead {
    /// The `model` value, decoded.
    pub model: String,
    /// Byte range of the `model` value (with its quotes) in the body.
    pub span: (usize, usize),
    /// `stream: true`.
    pub stream: bool,
    /// Byte range of the `messages` (chat) or `prompt` (completions) value,
    /// whose prefix keys the `affinity` policy.
    pub prompt: Option<(usize, usize)>,
    /// `max_completion_tokens`, else `max_tokens`, when a whole number
    /// (the output a tenant's token limit and budget reserve).
    pub max_tokens: Option<u64>,
}

/// Where the fields routing reads sit in a body's top-level object, as
/// byte ranges of their values: what both ways of reading a body (the
/// scanner, serde) give, so they can be checked against each other.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// `model` (any JSON value; `null` counts as absent).
    pub model: Option<(usize, usize)>,
    /// `stream`, when `true` or `false`.
    pub stream: Option<bool>,
    /// `messages` (chat).
    pub messages: Option<(usize, usize)>,
    /// `prompt` (completions).
    pub prompt: Option<(usize, usize)>,
    /// `max_tokens`.
    pub max_tokens: Option<(usize, usize)>,
    /// `max_completion_tokens`.
    pub max_completion_tokens: Option<(usize, usize)>,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    stream: Option<bool>,
    // Borrowed raw, like `model`: serde only checks them, builds nothing.
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    #[serde(borrow)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    max_completion_tokens: Option<&'a RawValue>,
}

/// Reads `model` and `stream`. The whole body is still checked to be valid
/// JSON, so a malformed request is a 400 here and never a confusing error
/// from a replica: by one pass of our own ([`scan`]) when it is sure, else
/// by serde, whose error names what is wrong.
pub fn parse(body: &[u8]) -> Result<OpenAiHead, ProxyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("request body is empty; expected a JSON object", None));
    }
    let fields = match scan::fields(body) {
        Some(fields) => fields,
        None => serde_fields(body)?,
    };
    let text = |(start, end): (usize, usize)| {
        // Both readers give ranges of whole UTF-8 values.
        std::str::from_utf8(&body[start..end]).unwrap_or_default()
    };
    let span = fields
        .model
        .ok_or_else(|| bad("missing required parameter: 'model'", Some("model")))?;
    let model =
        string_value(text(span)).ok_or_else(|| bad("'model' must be a string", Some("model")))?;
    if model.is_empty() {
        return Err(bad("'model' must not be empty", Some("model")));
    }
    Ok(OpenAiHead {
        model,
        span,
        stream: fields.stream == Some(true),
        prompt: fields.messages.or(fields.prompt),
        max_tokens: fields
            .max_completion_tokens
            .or(fields.max_tokens)
            .and_then(|at| text(at).parse().ok()),
    })
}

/// [`Fields`] through serde (the reference [`scan`] is fuzzed against);
/// its error is the 400 for a body that is not a request.
pub fn serde_fields(body: &[u8]) -> Result<Fields, ProxyError> {
    // Plain serde first: tracking the path costs as much as the parse
    // itself, and only an error needs it.
    let mut de = serde_json::Deserializer::from_slice(body);
    let head = match Head::deserialize(&mut de).and_then(|h| de.end().map(|()| h)) {
        Ok(head) => head,
        Err(_) => return Err(explain(body)),
    };
    // A raw value borrows from `body`, so its offset in `body` is where it sits.
    let span = |raw: &RawValue| {
        let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
        (start, start + raw.get().len())
    };
    Ok(Fields {
        model: head.model.map(span),
        stream: head.stream,
        messages: head.messages.map(span),
        prompt: head.prompt.map(span),
        max_tokens: head.max_tokens.map(span),
        max_completion_tokens: head.max_completion_tokens.map(span),
    })
}

/// Why `body` is not a request: the error of a second parse that tracks
/// the path, naming the field when only its type is wrong.
fn explain(body: &[u8]) -> ProxyError {
    let invalid = |detail: String, param| {
        bad(
            &format!("request body is not a valid JSON object{detail}"),
            param,
        )
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, Head<'_>>(&mut de) {
        Err(e) => {
            // Only a wrong type is the field's fault; broken syntax is the body's.
            let param = match (e.inner().classify(), e.path().to_string().as_str()) {
                (serde_json::error::Category::Data, "stream") => Some("stream"),
                (serde_json::error::Category::Data, "model") => Some("model"),
                _ => None,
            };
            let at = param.map(|p| format!(" (field `{p}`)")).unwrap_or_default();
            invalid(format!("{at}: {}", e.inner()), param)
        }
        Ok(_) => match de.end() {
            Err(e) => invalid(format!(": {e}"), None),
            Ok(()) => invalid(String::new(), None),
        },
    }
}

/// A JSON string value, decoded: without escapes the bytes between the
/// quotes (serde has already checked them), else through serde.
fn string_value(raw: &str) -> Option<String> {
    match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(inner.to_owned()),
        _ => serde_json::from_str(raw).ok(),
    }
}

/// The body with the `model` value replaced by `name`, or the same bytes
/// (no copy) when the name is already right.
pub fn rewrite_model(body: &Bytes, head: &OpenAiHead, name: &str) -> Bytes {
    if head.model == name {
        return body.clone();
    }
    let quoted = serde_json::to_string(name).unwrap_or_else(|_| format!("\"{name}\""));
    let (start, end) = head.span;
    let mut out = BytesMut::with_capacity(body.len() - (end - start) + quoted.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[end..]);
    out.freeze()
}

fn bad(message: &str, param: Option<&'static str>) -> ProxyError {
    ProxyError::BadRequest {
        message: message.to_owned(),
        param,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_model_and_stream_and_rewrites_only_the_model() {
        let body = Bytes::from_static(
            br#"{"messages":[{"role":"user","content":"model: x"}], "model" : "chat@v2","stream":true,"x":{"model":"inner"}}"#,
        );
        let head = parse(&body).unwrap();
        assert_eq!(head.model, "chat@v2");
        assert!(head.stream);
        let out = rewrite_model(&body, &head, "meta/llama-3");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"messages":[{"role":"user","content":"model: x"}], "model" : "meta/llama-3","stream":true,"x":{"model":"inner"}}"#
        );
    }

    #[test]
    fn the_prompt_is_located_without_parsing_it() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"be brief"}]}"#;
        let (a, b) = parse(body).unwrap().prompt.unwrap();
        assert_eq!(&body[a..b], br#"[{"role":"system","content":"be brief"}]"#);
        let body = br#"{"prompt":"Once upon","model":"m"}"#;
        let (a, b) = parse(body).unwrap().prompt.unwrap();
        assert_eq!(&body[a..b], br#""Once upon""#);
        assert_eq!(parse(br#"{"model":"m"}"#).unwrap().prompt, None);
    }

    #[test]
    fn unchanged_name_is_not_copied() {
        let body = Bytes::from_static(br#"{"model":"a"}"#);
        let head = parse(&body).unwrap();
        assert_eq!(rewrite_model(&body, &head, "a").as_ptr(), body.as_ptr());
    }

    #[test]
    fn escaped_model_names_are_decoded() {
        let body = br#"{"model":"a\u0062c"}"#;
        assert_eq!(parse(body).unwrap().model, "abc");
        let body = br#"{"model":"a\"b\\"}"#;
        assert_eq!(parse(body).unwrap().model, "a\"b\\");
        // Without escapes the bytes are taken as they are.
        assert_eq!(
            parse("{\"model\":\"modèle\"}".as_bytes()).unwrap().model,
            "modèle"
        );
    }

    #[test]
    fn bad_bodies_are_400s_naming_the_field() {
        for (body, needle, param) in [
            (&b""[..], "empty", None),
            (b"{\"model\": ", "not a valid JSON", None),
            (b"[1,2]", "not a valid JSON", None),
            (b"{\"messages\":[]}", "'model'", Some("model")),
            (b"{\"model\":7}", "must be a string", Some("model")),
            (b"{\"model\":\"m\"} trailing", "trailing", None),
            (
                b"{\"model\":\"m\",\"stream\":\"yes\"}",
                "field `stream`",
                Some("stream"),
            ),
            (
                b"{\"model\":\"a\",\"model\":\"b\"}",
                "duplicate field",
                None,
            ),
        ] {
            match parse(body) {
                Err(ProxyError::BadRequest { message, param: p }) => {
                    assert!(message.contains(needle), "{message}");
                    assert_eq!(p, param, "{message}");
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }
}
