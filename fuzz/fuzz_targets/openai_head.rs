//! The one parse of an OpenAI request body and the in-place model swap:
//! what our scanner accepts, serde accepts with the same fields; whatever
//! parses, rewritten, parses again with the new model and the same
//! `stream` flag.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchyard_proxy::openai;

fuzz_target!(|data: &[u8]| {
    if let Some(fast) = openai::scan::fields(data) {
        match openai::serde_fields(data) {
            Ok(slow) => assert_eq!(fast, slow, "scanner and serde read different fields"),
            Err(e) => panic!("the scanner accepted what serde refuses: {e}"),
        }
    }
    let body = Bytes::copy_from_slice(data);
    let Ok(head) = openai::parse(&body) else {
        return;
    };
    assert!(head.span.0 < head.span.1 && head.span.1 <= body.len());
    for name in ["llama-8b", "a\"b\\c\u{1}é"] {
        let out = openai::rewrite_model(&body, &head, name);
        let again = openai::parse(&out).expect("a rewritten body still parses");
        assert_eq!(again.model, name);
        assert_eq!(again.stream, head.stream);
    }
});
