//! Verifying an AWS SigV4 signature the way AWS does: parse the
//! `Authorization` header, recompute the signature over the received
//! request (method, path, query, the signed headers, the body's SHA-256)
//! with the known secret, and compare.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::request::Parts;

/// The keys the fake knows.
pub(crate) struct Keys<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
    pub(crate) session_token: Option<&'a str>,
    pub(crate) region: &'a str,
    /// `bedrock` or `sagemaker`.
    pub(crate) service: &'a str,
}

/// AWS's message for a wrong signature.
pub(crate) const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// `Err((error type, message))` as AWS would answer.
pub(crate) fn verify(
    parts: &Parts,
    body: &[u8],
    keys: &Keys<'_>,
) -> Result<(), (&'static str, String)> {
    let missing = || {
        (
            "MissingAuthenticationTokenException",
            "Missing Authentication Token".to_owned(),
        )
    };
    let auth = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(missing)?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err((
            "IncompleteSignatureException",
            "Authorization header requires Credential, SignedHeaders and Signature".into(),
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[0] != keys.access_key_id {
        return Err((
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".into(),
        ));
    }
    if scope[2] != keys.region || scope[3] != keys.service || scope[4] != "aws4_request" {
        return Err((
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region and service ({}/{}), not {}/{}",
                keys.region, keys.service, scope[2], scope[3]
            ),
        ));
    }
    let token = parts
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok());
    if token != keys.session_token {
        return Err((
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".into(),
        ));
    }
    let date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_amz_date)
        .ok_or((
            "IncompleteSignatureException",
            "missing or malformed X-Amz-Date".to_owned(),
        ))?;
    let skew = SystemTime::now()
        .duration_since(date)
        .unwrap_or_else(|e| e.duration());
    if skew > Duration::from_secs(15 * 60) {
        return Err(("InvalidSignatureException", "Signature expired".into()));
    }
    let expected = recompute(parts, body, keys, signed_headers, date)?;
    if expected == signature {
        Ok(())
    } else {
        Err(("InvalidSignatureException", MISMATCH.into()))
    }
}

fn recompute(
    parts: &Parts,
    body: &[u8],
    keys: &Keys<'_>,
    signed_headers: &str,
    time: SystemTime,
) -> Result<String, (&'static str, String)> {
    let bad = |e: String| ("InvalidSignatureException", e);
    let names: Vec<&str> = signed_headers.split(';').collect();
    // x-amz-date and the session token are re-added by the signer itself.
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter(|(n, _)| {
            names.contains(&n.as_str())
                && !matches!(n.as_str(), "x-amz-date" | "x-amz-security-token")
        })
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("http://{host}{path}");
    let identity = Credentials::new(
        keys.access_key_id,
        keys.secret_access_key,
        keys.session_token.map(str::to_owned),
        None,
        "fake-replica",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(keys.region)
        .name(keys.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| bad(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        parts.method.as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| bad(e.to_string()))?;
    // The signer traces its inputs; the fake's keys stay out of test logs.
    let silent = tracing::Dispatch::none();
    let out = tracing::dispatcher::with_default(&silent, || sign(signable, &params))
        .map_err(|e| bad(e.to_string()))?;
    let (instructions, signature) = out.into_parts();
    // The header list must match too (a header dropped on the way is a mismatch).
    let ours = instructions
        .headers()
        .find(|(n, _)| *n == "authorization")
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    if !ours.contains(&format!("SignedHeaders={signed_headers},")) {
        return Err(("InvalidSignatureException", MISMATCH.into()));
    }
    Ok(signature)
}

/// `20150830T123600Z` → time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_440_938_160
        );
        assert!(parse_amz_date("2015-08-30").is_none());
    }
}
