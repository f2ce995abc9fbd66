//! Per-thread spares of the buffers every request builds and drops: the
//! header maps of the client's request and of the replica's answer, the
//! bytes of the heads written to the replica and to the client, and the
//! header names outside the standard ones that heads keep repeating.
//!
//! Each was a `malloc` and a `free` per request (two each for a map: its
//! entries and its index), and the answer's map is over 1 KiB, a size
//! whose allocation makes glibc consolidate its fast bins every time.
//! hyper keeps one map per connection for the same reason
//! (`cached_headers`); a worker serves a request start to end on its own
//! thread (`server.workers`), so a per-thread stack gets back what that
//! thread's requests gave up, for any of its connections, with no lock.
//!
//! A spare is empty when handed out (a map is cleared, a buffer's length
//! is zero): nothing of one request is readable by the next. Only a few
//! are kept, and none that grew past a usual request's size, so an
//! unusual request's memory is returned, not kept.

use std::cell::RefCell;

use http::{HeaderMap, HeaderName};

/// Most spares of each kind a thread keeps (about a worker's requests in
/// flight between a map's creation and its return).
const KEEP: usize = 64;
/// Maps with room for more headers than this are dropped, not kept.
const MAX_MAP: usize = 64;
/// Buffers bigger than this are dropped, not kept.
const MAX_BUFFER: usize = 8 << 10;

/// Most header names a thread keeps.
const KEEP_NAMES: usize = 64;
/// Names longer than this are made each time, not kept.
const MAX_NAME: usize = 64;

thread_local! {
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
    static BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    /// Names made here before, by their bytes as written on the wire.
    static NAMES: RefCell<Vec<(Box<[u8]>, HeaderName)>> = const { RefCell::new(Vec::new()) };
}

/// The header name written as `wire`, for a name that is not one of the
/// standard ones. A client's SDK (the OpenAI SDKs' nine `x-stainless-*`
/// lines) or a cloud's answer (`openai-*`, `x-ratelimit-*`) sends the same
/// names on every request, and `HeaderName::from_bytes` lowercases and
/// allocates each one anew (~300 instructions a line); a name this thread
/// made before is a shared copy (a reference count). The first
/// [`KEEP_NAMES`] names seen are kept, so a client sending made-up names
/// costs itself the slow path, never memory.
pub fn header_name(wire: &[u8]) -> Result<HeaderName, http::header::InvalidHeaderName> {
    let known = NAMES.try_with(|names| {
        let names = names.borrow();
        names
            .iter()
            .find(|(bytes, _)| **bytes == *wire)
            .map(|(_, name)| name.clone())
    });
    if let Ok(Some(name)) = known {
        return Ok(name);
    }
    let name = HeaderName::from_bytes(wire)?;
    if wire.len() <= MAX_NAME {
        let _ = NAMES.try_with(|names| {
            let mut names = names.borrow_mut();
            if names.len() < KEEP_NAMES {
                names.push((wire.into(), name.clone()));
            }
        });
    }
    Ok(name)
}

/// An empty header map with room for `capacity` headers.
pub fn header_map(capacity: usize) -> HeaderMap {
    match MAPS.try_with(|maps| maps.borrow_mut().pop()) {
        Ok(Some(mut map)) => {
            map.reserve(capacity);
            map
        }
        _ => HeaderMap::with_capacity(capacity),
    }
}

/// Gives `map` back: cleared and kept for this thread's next request, or
/// dropped.
pub fn recycle_map(mut map: HeaderMap) {
    if map.capacity() > MAX_MAP || map.capacity() == 0 {
        return;
    }
    map.clear();
    let _ = MAPS.try_with(|maps| {
        let mut maps = maps.borrow_mut();
        if maps.len() < KEEP {
            maps.push(map);
        }
    });
}

/// An empty byte buffer with room for `capacity` bytes.
pub fn buffer(capacity: usize) -> Vec<u8> {
    match BUFFERS.try_with(|bufs| bufs.borrow_mut().pop()) {
        Ok(Some(mut buf)) => {
            buf.reserve(capacity);
            buf
        }
        _ => Vec::with_capacity(capacity),
    }
}

/// Gives `buf` back: emptied and kept for this thread's next request, or
/// dropped.
pub fn recycle_buffer(mut buf: Vec<u8>) {
    if buf.capacity() > MAX_BUFFER || buf.capacity() == 0 {
        return;
    }
    buf.clear();
    let _ = BUFFERS.try_with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        if bufs.len() < KEEP {
            bufs.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header::CONTENT_TYPE;

    #[test]
    fn a_recycled_map_comes_back_empty_with_its_room() {
        std::thread::spawn(|| {
            let mut map = header_map(10);
            map.insert(CONTENT_TYPE, HeaderValue::from_static("secret/one"));
            let room = map.capacity();
            recycle_map(map);
            let again = header_map(2);
            assert!(
                again.is_empty(),
                "a spare map must hold nothing of the last request"
            );
            assert!(again.get(CONTENT_TYPE).is_none());
            assert_eq!(
                again.capacity(),
                room,
                "the spare is the recycled map, room kept"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_recycled_buffer_comes_back_empty_and_oversized_ones_are_dropped() {
        std::thread::spawn(|| {
            let mut buf = buffer(100);
            buf.extend_from_slice(b"GET /secret HTTP/1.1\r\n");
            let ptr = buf.as_ptr();
            recycle_buffer(buf);
            let again = buffer(10);
            assert!(again.is_empty());
            assert_eq!(again.as_ptr(), ptr, "the same allocation is reused");
            recycle_buffer(again);
            let _ = buffer(0);
            // One grown past the limit is not kept.
            recycle_buffer(Vec::with_capacity(MAX_BUFFER * 2));
            assert!(buffer(0).capacity() < MAX_BUFFER * 2);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_kept_name_is_the_same_name_and_the_names_kept_are_bounded() {
        std::thread::spawn(|| {
            for wire in [
                &b"X-Stainless-Lang"[..],
                b"x-stainless-lang",
                b"openai-version",
            ] {
                let made = HeaderName::from_bytes(wire).unwrap();
                assert_eq!(header_name(wire).unwrap(), made);
                assert_eq!(header_name(wire).unwrap(), made, "from the kept copy");
            }
            assert_eq!(NAMES.with(|n| n.borrow().len()), 3);
            assert!(header_name(b"bad name").is_err());
            assert!(
                header_name(b"bad name").is_err(),
                "an invalid name is never kept"
            );
            for i in 0..KEEP_NAMES * 2 {
                let wire = format!("x-made-up-{i}");
                assert_eq!(header_name(wire.as_bytes()).unwrap().as_str(), wire);
            }
            assert_eq!(NAMES.with(|n| n.borrow().len()), KEEP_NAMES);
            let long = "x".repeat(MAX_NAME + 1);
            NAMES.with(|n| n.borrow_mut().clear());
            assert_eq!(header_name(long.as_bytes()).unwrap().as_str(), long);
            assert_eq!(
                NAMES.with(|n| n.borrow().len()),
                0,
                "a long name is not kept"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_spares_kept_are_bounded() {
        std::thread::spawn(|| {
            for _ in 0..KEEP * 3 {
                recycle_map(HeaderMap::with_capacity(4));
                recycle_buffer(Vec::with_capacity(64));
            }
            assert_eq!(MAPS.with(|m| m.borrow().len()), KEEP);
            assert_eq!(BUFFERS.with(|b| b.borrow().len()), KEEP);
        })
        .join()
        .unwrap();
    }
}
