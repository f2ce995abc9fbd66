//! AWS Signature Version 4 for Bedrock (and later SageMaker) requests, with
//! the `aws-sigv4` crate.
//!
//! Signed: the method, path, query, `host`, the body's SHA-256, and the
//! headers a proxy on the way should not change (`content-type`, `accept`,
//! `x-amz-*`). Forwarding headers (`x-forwarded-for`, `traceparent`) are
//! sent unsigned, as AWS's own SDKs leave `user-agent` and trace ids.
//!
//! The signer traces its inputs (including the access key id) at TRACE
//! level; signing runs under a no-op dispatcher so no credential can reach
//! a log even with `RUST_LOG=trace`.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::Request;

use switchyard_config::AwsCredentials;

/// Headers covered by the signature (besides `host`, which is derived
/// from the URI, and `x-amz-date` / `x-amz-security-token`, which the
/// signer adds).
fn signed(name: &str) -> bool {
    name == "content-type" || name == "accept" || name.starts_with("x-amz-")
}

/// Signs `req` (whose body is `body`) in place: adds `authorization`,
/// `x-amz-date` and, for temporary credentials, `x-amz-security-token`.
pub fn sign_request<B>(
    req: &mut Request<B>,
    body: &[u8],
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    let identity = Credentials::new(
        creds.access_key_id.expose(),
        creds.secret_access_key.expose(),
        creds.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "switchyard-config",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("SigV4 parameters: {e}"))?
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter(|(name, _)| signed(name.as_str()))
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("request cannot be signed: {e}"))?;
    let silent = tracing::Dispatch::none();
    let output = tracing::dispatcher::with_default(&silent, || sign(signable, &params))
        .map_err(|e| format!("SigV4 signing failed: {e}"))?;
    let (instructions, _signature) = output.into_parts();
    instructions.apply_to_request_http1x(req);
    for name in ["authorization", "x-amz-security-token"] {
        if let Some(v) = req.headers_mut().get_mut(name) {
            v.set_sensitive(true);
        }
    }
    Ok(())
}

/// The wall clock, as SigV4 signs with it (AWS refuses a signature more
/// than 5 minutes off) and OpenAI's `created` field states it.
#[allow(
    clippy::disallowed_methods,
    reason = "SigV4 signs the wall-clock time; nothing here decides on it"
)]
pub fn signing_time() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_config::Secret;

    use super::*;

    fn example_keys(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(Secret::new),
        }
    }

    /// 2015-08-30T12:36:00Z, the suite's timestamp.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    /// `get-vanilla` from AWS's published SigV4 test suite.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut req = Request::get("https://example.amazonaws.com/")
            .body(())
            .unwrap();
        sign_request(
            &mut req,
            b"",
            &example_keys(None),
            "us-east-1",
            "service",
            suite_time(),
        )
        .unwrap();
        assert_eq!(req.headers()["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            req.headers()["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// `post-vanilla` from the same suite.
    #[test]
    fn aws_test_suite_post_vanilla() {
        let mut req = Request::post("https://example.amazonaws.com/")
            .body(())
            .unwrap();
        sign_request(
            &mut req,
            b"",
            &example_keys(None),
            "us-east-1",
            "service",
            suite_time(),
        )
        .unwrap();
        assert_eq!(
            req.headers()["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    #[test]
    fn session_token_is_sent_and_marked_sensitive() {
        let mut req =
            Request::post("https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse")
                .header("content-type", "application/json")
                .header("traceparent", "00-x-y-01")
                .body(())
                .unwrap();
        sign_request(
            &mut req,
            b"{}",
            &example_keys(Some("TOKEN")),
            "us-east-1",
            "bedrock",
            suite_time(),
        )
        .unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert!(req.headers()["x-amz-security-token"].is_sensitive());
        assert!(req.headers()["authorization"].is_sensitive());
    }
}
