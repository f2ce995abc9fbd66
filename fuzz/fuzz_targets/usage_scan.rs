//! The usage tap's incremental scan over an answer cut anywhere.
#![no_main]

mod chunks;

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::usage::UsageScan;

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
});
