//! The usage tap's incremental scan over an answer cut anywhere, and its
//! reading of a `usage` object, which must agree with serde's on valid JSON.
#![no_main]

mod chunks;

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::usage::{Usage, UsageScan, usage_object};

fuzz_target!(|data: &[u8]| {
    let (chunks, payload) = chunks::split(data);
    let mut scan = UsageScan::default();
    for chunk in &chunks {
        scan.feed(chunk);
    }
    let _ = scan.finish();
    let mut once = UsageScan::default();
    once.feed(payload);
    let _ = once.finish();

    let mut values = serde_json::Deserializer::from_slice(payload).into_iter::<serde_json::Value>();
    if let Some(Ok(_)) = values.next() {
        let serde = serde_json::Deserializer::from_slice(payload)
            .into_iter::<Usage>()
            .next()
            .and_then(Result::ok);
        assert_eq!(usage_object(payload), serde, "{:?}", String::from_utf8_lossy(payload));
    }
});
