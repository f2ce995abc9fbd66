//! An answer and the headers the gateway adds to every one: its
//! `x-request-id`, and on a replica's answer which replica and version
//! served it, under which config generation, after how many attempts.
//!
//! They travel beside the response, not in its header map. Our HTTP/1
//! encoder writes them straight into the head ([`Ours::write_h1`]);
//! inserting them into the map first hashed each name byte by byte, five
//! inserts a request, about 3 % of its instructions, for lines the encoder
//! then copied out again. HTTP/2 (hyper's encoder) and in-process callers
//! get them in the map ([`Answer::into_response`]). A replica's own lines
//! of these names never reach the client (`headers::to_client`): a
//! Switchyard behind a Switchyard does not stamp our answers.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Response};

use crate::body::ProxyBody;
use crate::headers::names;
use crate::snapshot::Snapshot;

/// A response, and the gateway's own headers still to be added to it
/// (`None` once they are in its map).
#[derive(Debug)]
pub struct Answer {
    /// Status, the headers that are not ours, the body.
    pub response: Response<ProxyBody>,
    /// Ours, when not in `response`'s map already.
    pub ours: Option<Ours>,
}

impl Answer {
    /// The response with our headers in its map (for HTTP/2 and tests).
    pub fn into_response(self) -> Response<ProxyBody> {
        let Answer { mut response, ours } = self;
        if let Some(ours) = ours {
            ours.into_map(response.headers_mut());
        }
        response
    }
}

/// Which replica of a snapshot served an answer, and after how many attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The replica's index in the snapshot's table.
    pub replica: usize,
    /// Attempts the answer took, this one included.
    pub attempts: usize,
}

/// The gateway's own headers for one answer.
pub struct Ours {
    request_id: HeaderValue,
    /// For a replica's answer: the snapshot the request ran on (whose
    /// replica and generation header values are written) and the stamp.
    served: Option<(Arc<Snapshot>, Stamp)>,
}

impl Ours {
    /// `served`: for a replica's answer, the request's snapshot and stamp.
    pub fn new(request_id: HeaderValue, served: Option<(Arc<Snapshot>, Stamp)>) -> Self {
        Self { request_id, served }
    }

    /// Each line, in the order written.
    fn for_each(&self, mut line: impl FnMut(HeaderName, &HeaderValue)) {
        if let Some((snap, stamp)) = &self.served {
            let up = &snap.upstreams[stamp.replica];
            line(names::X_REPLICA, &up.id_header);
            line(names::X_VERSION, &up.version_header);
            line(names::X_GENERATION, &snap.generation_header);
            line(names::X_ATTEMPTS, &names::attempts_value(stamp.attempts));
        }
        line(names::X_REQUEST_ID, &self.request_id);
    }

    /// Writes each as an HTTP/1 header line into a response head.
    pub fn write_h1(&self, out: &mut Vec<u8>) {
        self.for_each(|name, value| {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        });
    }

    /// Puts each into `headers`, replacing any line of the same name.
    pub fn into_map(self, headers: &mut HeaderMap) {
        self.for_each(|name, value| {
            headers.insert(name, value.clone());
        });
    }
}

impl std::fmt::Debug for Ours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ours")
            .field("request_id", &self.request_id)
            .field("stamp", &self.served.as_ref().map(|(_, s)| s))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_replica_only_the_request_id_is_ours() {
        let ours = Ours::new(HeaderValue::from_static("abc"), None);
        let mut head = Vec::new();
        ours.write_h1(&mut head);
        assert_eq!(head, b"x-request-id: abc\r\n");
        let mut map = HeaderMap::new();
        map.insert("x-request-id", HeaderValue::from_static("theirs"));
        ours.into_map(&mut map);
        assert_eq!(map.len(), 1);
        assert_eq!(map["x-request-id"], "abc");
    }

    #[test]
    fn a_replica_s_answer_names_the_replica_version_generation_and_attempts() {
        let yaml = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 50 }, { name: v2, weight: 50 }] }]
replicas:
  - { id: a, model: m, version: v1, cloud: c, url: "http://127.0.0.1:9" }
  - { id: b, model: m, version: v2, cloud: c, url: "http://127.0.0.1:9" }
"#;
        let config = switchyard_config::load_str(yaml, &|_| None).unwrap();
        let gw = crate::Proxy::new(config, Arc::new(crate::NoObserver)).unwrap();
        let stamp = Stamp {
            replica: 1,
            attempts: 2,
        };
        let ours = Ours::new(
            HeaderValue::from_static("r-1"),
            Some((gw.snapshot(), stamp)),
        );
        let mut head = Vec::new();
        ours.write_h1(&mut head);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "x-switchyard-replica: b\r\n\
             x-switchyard-version: v2\r\n\
             x-switchyard-config-generation: 1\r\n\
             x-switchyard-attempts: 2\r\n\
             x-request-id: r-1\r\n"
        );
        // In a map they replace a line of the same name, wherever from.
        let mut response = Response::new(crate::body::full(""));
        response
            .headers_mut()
            .insert("x-switchyard-replica", HeaderValue::from_static("theirs"));
        let ours = Some(ours);
        let response = Answer { response, ours }.into_response();
        let h = response.headers();
        assert_eq!(h.len(), 5);
        assert_eq!(h["x-switchyard-replica"], "b");
        assert_eq!(h["x-switchyard-version"], "v2");
        assert_eq!(h["x-switchyard-config-generation"], "1");
        assert_eq!(h["x-switchyard-attempts"], "2");
        assert_eq!(h["x-request-id"], "r-1");
    }
}
