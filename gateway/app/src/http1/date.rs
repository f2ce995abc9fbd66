//! The `date` header on every response (RFC 9110 §6.6.1; hyper wrote it
//! too), formatted once a second per thread rather than per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::DATE;

thread_local! {
    /// The second last formatted, and its header line.
    static CACHED: RefCell<(u64, [u8; 37])> = const { RefCell::new((0, [0; 37])) };
}

/// `date: <IMF-fixdate>\r\n` for now, or nothing when the handler set one
/// (a replica's own `date` is passed on as it is).
#[allow(
    clippy::disallowed_methods,
    reason = "the `date` header is wall-clock time shown to clients"
)]
pub fn date_line(headers: &HeaderMap) -> Option<[u8; 37]> {
    if headers.contains_key(DATE) {
        return None;
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|(at, line)| {
        if *at != secs || line[0] == 0 {
            let text = format!("date: {}\r\n", httpdate::fmt_http_date(now));
            if text.len() == line.len() {
                line.copy_from_slice(text.as_bytes());
                *at = secs;
            }
        }
        (line[0] != 0).then_some(*line)
    })
}
