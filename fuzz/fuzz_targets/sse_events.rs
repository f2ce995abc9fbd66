//! The SSE event framer and the end-of-stream watch: whatever the bytes and
//! wherever they are cut, the framer releases exactly the input (whole
//! events, then the held partial one), the same events as one push would,
//! and what it released is whole events.
#![no_main]

mod chunks;

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::events::EventFramer;
use switchyard_proxy::sse::SseWatch;

fuzz_target!(|data: &[u8]| {
    let (chunks, payload) = chunks::split(data);
    let mut framer = EventFramer::default();
    let mut watch = SseWatch::default();
    let mut out = Vec::new();
    let mut data_events = 0;
    for chunk in &chunks {
        let Ok(framed) = framer.push(chunk) else {
            return;
        };
        watch.feed(&framed.events);
        out.extend_from_slice(&framed.events);
        data_events += framed.data_events;
    }
    let _ = watch.finished();
    let mut again = EventFramer::default();
    let released = again.push(&out).expect("released events are small");
    assert!(again.partial().is_empty(), "what is released is whole events");
    assert_eq!(released.data_events, data_events);
    let mut whole = out.clone();
    whole.extend_from_slice(framer.partial());
    assert_eq!(whole, payload, "nothing lost, nothing added");

    let mut once = EventFramer::default();
    let framed = once.push(payload).expect("as small as the chunked input");
    let mut same = framed.events.to_vec();
    same.extend_from_slice(once.partial());
    assert_eq!(same, payload);
    // A CRLF cut between its CR and LF may release the LF one push later;
    // the events themselves are the same.
    assert_eq!(framed.data_events, data_events, "same data events");
});
