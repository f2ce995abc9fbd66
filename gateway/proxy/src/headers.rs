//! Which headers cross the gateway, in both directions. `forward.rs` calls
//! [`to_replica`] on the way out and [`to_client`] on the way back.
//!
//! **To a replica**: never hop-by-hop headers (RFC 9110 §7.6.1, and those
//! `Connection` lists), never the client's credentials for this gateway
//! (`authorization`, `api-key`, `x-api-key`) nor a cloud session token
//! (`x-amz-security-token`), never its cookies, and never
//! client-asserted addressing (`forwarded`, `x-real-ip`: the gateway
//! appends the one it saw to `x-forwarded-for`). A cloud replica (an
//! adapter: Azure OpenAI, Bedrock, SageMaker) gets only what its protocol
//! needs, [`cloud_kept`]: a client's `x-amz-*` or `x-ms-*` token must not
//! ride along on (or be signed into) our request.
//!
//! **To a client**: never hop-by-hop headers; by default not
//! [`RESPONSE_HEADERS_DENIED`] (`server`, `set-cookie`, `x-upstream-*`, ...)
//! unless `server.response_headers.allow` names them; never what
//! `server.response_headers.deny` names; never the replica's own lines of
//! the headers we add (`x-request-id`, `x-switchyard-*`: `answer.rs`).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use switchyard_config::ResponseHeaders;
use switchyard_config::defaults::RESPONSE_HEADERS_DENIED;

/// Our own header names, parsed once: a lookup or insert by `&str` parses
/// and hashes the name on every request.
pub(crate) mod names {
    use http::header::HeaderName;

    /// The request id, both ways.
    pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    /// Which replica served an answer.
    pub const X_REPLICA: HeaderName = HeaderName::from_static("x-switchyard-replica");
    /// That replica's model version.
    pub const X_VERSION: HeaderName = HeaderName::from_static("x-switchyard-version");
    /// The config generation the request ran on.
    pub const X_GENERATION: HeaderName = HeaderName::from_static("x-switchyard-config-generation");
    /// Attempts the answer took.
    pub const X_ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
    /// The wait-queue priority a client asks for.
    pub const X_PRIORITY: HeaderName = HeaderName::from_static("x-switchyard-priority");
    /// Clouds a request may reach.
    pub const X_CLOUDS: HeaderName = HeaderName::from_static("x-switchyard-clouds");

    /// The attempt count as a header value; the usual ones without an
    /// allocation.
    pub fn attempts_value(attempts: usize) -> http::HeaderValue {
        match attempts {
            1 => http::HeaderValue::from_static("1"),
            2 => http::HeaderValue::from_static("2"),
            3 => http::HeaderValue::from_static("3"),
            n => http::HeaderValue::from(n),
        }
    }
}

/// Hop-by-hop headers: they describe one connection. These lists match
/// a name's text: a `match` is a switch on the length and a comparison or
/// two, where a list of `HeaderName`s was walked, name by name, for every
/// header of every request.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authenticate"
    )
}

/// The headers the gateway adds to every answer it passes on
/// (`answer.rs`): a replica's own lines of these names (a Switchyard
/// behind this one, say) would be read as ours.
fn ours(name: &str) -> bool {
    matches!(
        name,
        "x-request-id"
            | "x-switchyard-replica"
            | "x-switchyard-version"
            | "x-switchyard-config-generation"
            | "x-switchyard-attempts"
    )
}

/// Client headers never sent to any replica, besides hop-by-hop ones.
fn not_forwarded(name: &str) -> bool {
    matches!(
        name,
        "proxy-authorization"
            | "host"
            | "content-length"
            | "authorization"
            | "expect"
            | "cookie"
            | "cookie2"
            | "forwarded"
            | "x-real-ip"
            | "api-key"
            | "x-api-key"
            | "x-forwarded-host"
            | "x-amz-security-token"
    )
}

/// The only client headers a cloud replica gets (its adapter adds the
/// protocol's own and the signature).
pub fn cloud_kept(name: &str) -> bool {
    matches!(
        name,
        "content-type" | "accept" | "traceparent" | "tracestate" | "x-forwarded-for"
    )
}

/// Copies the client's headers that may go to a replica into `to`
/// (`cloud`: the replica is behind a cloud adapter).
pub fn to_replica(from: &HeaderMap, to: &mut HeaderMap, cloud: bool) {
    for (name, value) in for_replica(from, cloud) {
        to.append(name.clone(), value.clone());
    }
}

/// The client's headers that may go to a replica, in order (`cloud`: the
/// replica is behind a cloud adapter).
pub fn for_replica(
    from: &HeaderMap,
    cloud: bool,
) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    let listed = connection_listed(from);
    from.iter().filter(move |(name, _)| {
        let name = name.as_str();
        let pass = if cloud {
            cloud_kept(name)
        } else {
            !hop_by_hop(name) && !not_forwarded(name)
        };
        pass && !listed.iter().any(|l| l == name)
    })
}

/// Removes from a replica's response headers what must not reach the
/// client. Returns whether any line went (usually none does; a caller that
/// read the headers before then reads them again).
pub fn to_client(headers: &mut HeaderMap, policy: &ResponseHeaders) -> bool {
    // Usually there is nothing to remove: look first, allocating nothing.
    let removable = |name: &str| hop_by_hop(name) || ours(name) || denied(name, policy);
    if !headers.keys().any(|name| removable(name.as_str())) {
        return false;
    }
    let listed = connection_listed(headers);
    let dropped: Vec<HeaderName> = headers
        .keys()
        .filter(|name| removable(name.as_str()) || listed.iter().any(|l| l == name.as_str()))
        .cloned()
        .collect();
    for name in dropped {
        headers.remove(name);
    }
    true
}

fn denied(name: &str, policy: &ResponseHeaders) -> bool {
    let any = |patterns: &[String]| patterns.iter().any(|p| matches(p, name));
    any(&policy.deny)
        || (RESPONSE_HEADERS_DENIED.iter().any(|p| matches(p, name)) && !any(&policy.allow))
}

/// `pattern` is a lower-case name or `prefix*`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Header names listed in `Connection:` are hop-by-hop too. (Looked up
/// only when a `connection` line is there: most requests have none, and a
/// lookup that finds nothing still hashes and probes.)
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    if !headers.keys().any(|name| name == header::CONNECTION) {
        return Vec::new();
    }
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        n.sort_unstable();
        n
    }

    const CLIENT: &[(&str, &str)] = &[
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "1"),
        ("authorization", "Bearer client-key"),
        ("api-key", "k"),
        ("x-api-key", "k"),
        ("cookie", "session=1"),
        ("x-real-ip", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6"),
        ("x-amz-security-token", "t"),
        ("x-ms-client-request-id", "m"),
        ("content-type", "application/json"),
        ("traceparent", "00-abc-def-01"),
        ("x-custom", "c"),
    ];

    #[test]
    fn a_replica_gets_no_hop_headers_credentials_cookies_or_client_addressing() {
        let mut to = HeaderMap::new();
        to_replica(&map(CLIENT), &mut to, false);
        assert_eq!(
            names(&to),
            [
                "content-type",
                "traceparent",
                "x-custom",
                "x-ms-client-request-id"
            ]
        );
    }

    #[test]
    fn a_cloud_replica_gets_only_what_its_protocol_needs() {
        let mut to = HeaderMap::new();
        to_replica(&map(CLIENT), &mut to, true);
        assert_eq!(names(&to), ["content-type", "traceparent"]);
    }

    #[test]
    fn an_answer_with_nothing_to_drop_keeps_every_header() {
        let mut h = map(&[
            ("content-type", "application/json"),
            ("x-cache-status", "hit"),
            ("x-cache-status", "again"),
        ]);
        assert!(
            !to_client(&mut h, &ResponseHeaders::default()),
            "nothing went"
        );
        assert_eq!(h.get_all("x-cache-status").iter().count(), 2);
        let deny = ResponseHeaders {
            allow: vec![],
            deny: vec!["x-cache-status".into()],
        };
        assert!(to_client(&mut h, &deny), "a line went");
        assert_eq!(names(&h), ["content-type"]);
    }

    #[test]
    fn replica_response_headers_are_filtered_by_default_and_by_policy() {
        let from = map(&[
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("server", "vllm/0.6"),
            ("set-cookie", "a=1"),
            ("x-upstream-internal-ip", "10.0.0.7"),
            ("x-cache-status", "hit"),
            ("content-type", "application/json"),
            ("x-ratelimit-remaining", "9"),
        ]);
        let mut h = from.clone();
        to_client(&mut h, &ResponseHeaders::default());
        assert_eq!(
            names(&h),
            ["content-type", "x-cache-status", "x-ratelimit-remaining"]
        );
        let policy = ResponseHeaders {
            allow: vec!["server".into()],
            deny: vec!["x-cache-*".into(), "x-ratelimit-remaining".into()],
        };
        let mut h = from;
        to_client(&mut h, &policy);
        assert_eq!(names(&h), ["content-type", "server"]);
    }

    /// A replica's lines of the headers we add never pass: ours replace them.
    #[test]
    fn a_replica_s_own_lines_of_our_headers_do_not_pass() {
        let mut h = map(&[
            ("content-type", "application/json"),
            ("x-request-id", "theirs"),
            ("x-switchyard-replica", "inner"),
            ("x-switchyard-version", "v0"),
            ("x-switchyard-config-generation", "9"),
            ("x-switchyard-attempts", "3"),
        ]);
        assert!(to_client(&mut h, &ResponseHeaders::default()));
        assert_eq!(names(&h), ["content-type"]);
        for name in [
            super::names::X_REQUEST_ID,
            super::names::X_REPLICA,
            super::names::X_VERSION,
            super::names::X_GENERATION,
            super::names::X_ATTEMPTS,
        ] {
            assert!(ours(name.as_str()), "{name} is one of ours");
        }
    }
}
