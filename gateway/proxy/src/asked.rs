//! The client's headers the request path reads, found in one pass over
//! its lines. A lookup by name hashes the name (ours, `x-switchyard-*`,
//! byte by byte) and probes the map: about 100 instructions, six times a
//! request, and most of them find nothing. A pass over a usual request's
//! few lines compares each name with these and is done.

use http::header::{self, HeaderMap, HeaderValue};
use switchyard_config::defaults::AFFINITY_HEADER;

use crate::admission::Priority;

/// What the client's headers ask of the request path (first line of each
/// name, as `HeaderMap::get` reads them).
#[derive(Debug)]
pub struct Asked {
    /// `x-request-id`, when it is sane (1 to 128 bytes).
    pub request_id: Option<HeaderValue>,
    /// `x-switchyard-priority`; `None` for a value other than high, normal
    /// or low (a 400 where priority matters: [`Priority::invalid`]).
    pub priority: Option<Priority>,
    /// The routing key of `x-switchyard-session`.
    pub session: Option<u64>,
    /// Whether an `x-switchyard-clouds` line is there (its lines are read
    /// only then).
    pub clouds: bool,
    /// The body length declared in `content-length`, when it is a number.
    pub length: Option<u64>,
}

impl Asked {
    /// One pass over `headers`.
    pub fn scan(headers: &HeaderMap) -> Self {
        let mut asked = Asked {
            request_id: None,
            priority: Some(Priority::Normal),
            session: None,
            clouds: false,
            length: None,
        };
        let (mut id, mut priority, mut length) = (false, false, false);
        for (name, value) in headers {
            if name == header::CONTENT_LENGTH {
                if !std::mem::replace(&mut length, true) {
                    asked.length = std::str::from_utf8(value.as_bytes())
                        .ok()
                        .and_then(|v| v.parse().ok());
                }
                continue;
            }
            // Ours by their text: comparing with our names' constants would
            // make (and drop) a temporary per comparison.
            let name = name.as_str();
            if !name.starts_with("x-") {
                continue;
            }
            match name {
                // The first line only: an insane first one gets a fresh id.
                "x-request-id"
                    if !std::mem::replace(&mut id, true) && (1..=128).contains(&value.len()) =>
                {
                    asked.request_id = Some(value.clone());
                }
                "x-switchyard-priority" if !std::mem::replace(&mut priority, true) => {
                    asked.priority = Priority::from_value(Some(value.as_bytes()));
                }
                // The session that keeps a conversation on one model version.
                AFFINITY_HEADER if asked.session.is_none() => {
                    asked.session = Some(switchyard_router::affinity_key(value.as_bytes()));
                }
                "x-switchyard-clouds" => asked.clouds = true,
                _ => {}
            }
        }
        asked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in lines {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn each_value_is_the_first_line_of_its_name_as_a_lookup_reads_it() {
        let h = headers(&[
            ("content-length", "12"),
            ("content-length", "99"),
            ("x-request-id", "abc"),
            ("x-request-id", "def"),
            ("x-switchyard-priority", "high"),
            ("x-switchyard-priority", "bogus"),
            ("x-switchyard-session", "s1"),
            ("x-switchyard-session", "s2"),
            ("x-switchyard-clouds", "aws"),
            ("host", "example"),
        ]);
        let asked = Asked::scan(&h);
        assert_eq!(asked.length, Some(12));
        assert_eq!(asked.request_id, h.get("x-request-id").cloned());
        assert_eq!(asked.priority.unwrap(), Priority::from_headers(&h).unwrap());
        assert_eq!(asked.session, Some(switchyard_router::affinity_key(b"s1")));
        assert!(asked.clouds);
    }

    #[test]
    fn nothing_asked_is_the_defaults() {
        let asked = Asked::scan(&headers(&[("host", "h"), ("content-type", "a/b")]));
        assert!(asked.request_id.is_none() && asked.session.is_none() && !asked.clouds);
        assert_eq!(asked.priority.unwrap(), Priority::Normal);
        assert_eq!(asked.length, None);
    }

    #[test]
    fn a_bad_priority_or_an_insane_request_id_is_seen() {
        let long: &'static str = Box::leak("x".repeat(129).into_boxed_str());
        let asked = Asked::scan(&headers(&[
            ("x-switchyard-priority", "urgent"),
            ("x-request-id", long),
            ("content-length", "ten"),
        ]));
        assert!(asked.priority.is_none());
        assert!(
            asked.request_id.is_none(),
            "over 128 bytes: a fresh one is made"
        );
        assert_eq!(asked.length, None);
    }
}
