use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::openai::serde_fields;

/// The scanner's fields, which serde must give too.
fn agreed(body: &[u8]) -> Fields {
    let fast = fields(body)
        .unwrap_or_else(|| panic!("scanner refused {:?}", String::from_utf8_lossy(body)));
    let slow = serde_fields(body)
        .unwrap_or_else(|e| panic!("serde refused {:?}: {e}", String::from_utf8_lossy(body)));
    assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(body));
    fast
}

#[test]
fn usual_bodies_read_as_serde_reads_them() {
    for body in [
        r#"{"model":"bench","stream":false,"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"m","prompt":["a","b"],"max_tokens":16,"max_completion_tokens":null}"#,
        " \t\r\n{ \"model\" : \"m\" , \"stream\" : true , \"x\" : { } , \"y\" : [ ] } \n",
        r#"{"x":{"model":"inner","stream":"not a bool"},"model":"outer"}"#,
        r#"{"n":[0,-0,1.5,-2e10,3E+2,4e-3,12345678901234567890123,0.0e0],"model":"m"}"#,
        r#"{"s":"tab\t quote\" slash\/ back\\ \b\f\n\r \u00e9 \ud83d\ude00 \uFFFF","model":"m"}"#,
        "{\"model\":\"modèle\",\"content\":\"日本語 — ünïcödé 😀\"}",
        r#"{"model":null,"messages":null,"stream":null}"#,
        r#"{"model":7,"stream":true}"#,
        r#"{"a":true,"b":false,"c":null,"d":{"e":[{"f":[[[]]]}]}}"#,
        r#"{}"#,
    ] {
        agreed(body.as_bytes());
    }
    let f = agreed(br#"{"model" : "m", "messages" :[1]}"#);
    assert_eq!(f.model, Some((11, 14)));
    assert_eq!(f.messages, Some((28, 31)));
}

#[test]
fn what_it_is_not_sure_of_is_left_to_serde() {
    let deep = format!(
        r#"{{"model":"m","x":{}{}}}"#,
        "[".repeat(70),
        "]".repeat(70)
    );
    for body in [
        // serde accepts these: an escaped key can name a field, and
        // whether a lone surrogate is taken depends on the field.
        r#"{"mo\u0064el":"m"}"#,
        r#"{"model":"m","x":"\ud800"}"#,
        r#"{"model":"m","x":"\udc00\ud800"}"#,
        r#"{"model":"m","x":"\ud800\u0041"}"#,
        r#"{"model":"m","x":"\ud800x"}"#,
        deep.as_str(),
        // serde refuses these, with the message the client gets.
        r#"{"model":"a","model":"b"}"#,
        r#"{"stream":true,"stream":false}"#,
        r#"{"stream":"yes","model":"m"}"#,
        r#"["m",true]"#,
        r#"{"model":"m",}"#,
        "{\"model\":\"m\u{1}\"}",
        r#"{"model":"m"} x"#,
        r#"{"model":01}"#,
        r#"{"model":1.}"#,
        r#"{"model":"m","x":tru}"#,
        r#"{"model":"\x"}"#,
        r#"{"model":"\u12g4"}"#,
        "\u{feff}{\"model\":\"m\"}",
        r#"{"model":"m""#,
        r#"{"model""m"}"#,
    ] {
        assert_eq!(fields(body.as_bytes()), None, "{body}");
    }
    assert_eq!(fields(b"{\"model\":\"\xff\"}"), None);
    // Where serde accepts, its reading is the one used.
    assert_eq!(
        crate::openai::parse(br#"{"mo\u0064el":"m"}"#)
            .unwrap()
            .model,
        "m"
    );
}

#[test]
fn a_string_ends_at_its_first_quote_wherever_it_falls_in_a_word() {
    let rest = |bytes: &[u8]| {
        let mut s = Scan { b: bytes, at: 0 };
        s.string_rest().map(|escaped| (s.at, escaped))
    };
    // Past two 16-byte steps and an 8-byte one, at every offset.
    for len in 0..48 {
        // UTF-8 bytes (high bit set), DEL and space are plain.
        let text: Vec<u8> = (0..len).map(|i| [0xc3, 0x7f, b' ', b'~'][i % 4]).collect();
        let with = |tail: &[u8]| [&text[..], tail].concat();
        assert_eq!(rest(&with(b"\"x\"")), Some((len + 1, false)));
        assert_eq!(rest(&with(b"\\n\"x")), Some((len + 3, true)));
        assert_eq!(rest(&with(b"\\u00e9\"")), Some((len + 7, true)));
        assert_eq!(rest(&with(b"\\ud83d\\ude00\"")), Some((len + 13, true)));
        assert_eq!(rest(&with(b"\x00\"")), None);
        assert_eq!(rest(&with(b"\x1f\"")), None);
        assert_eq!(rest(&with(b"\\q\"")), None);
        assert_eq!(rest(&text), None, "no closing quote");
    }
}

/// Any JSON value, a few levels deep.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_request_shaped_body_reads_as_serde_reads_it(
        extra in prop::collection::btree_map("[a-z_]{1,22}", value(), 0..6),
        model in value(),
        messages in value(),
        stream in prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool)],
        pretty in any::<bool>(),
    ) {
        let mut body = json!({ "model": model, "messages": messages, "stream": stream });
        body.as_object_mut().unwrap().extend(extra);
        let text = if pretty {
            serde_json::to_vec_pretty(&body).unwrap()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        // Lone surrogates cannot be written from a `String`: every body
        // here is one the scanner must take.
        agreed(&text);
    }

    #[test]
    fn a_damaged_body_is_read_as_serde_reads_it_or_left_to_serde(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        model in value(),
    ) {
        let mut body = serde_json::to_vec(&json!({ "model": model, "max_tokens": 16 })).unwrap();
        let i = at.index(body.len());
        body[i] = byte;
        if let Some(fast) = fields(&body) {
            prop_assert_eq!(Some(fast), serde_fields(&body).ok());
        }
    }
}
