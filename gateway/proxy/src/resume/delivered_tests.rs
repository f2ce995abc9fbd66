use super::*;

fn chunk(content: &str) -> String {
    format!(
        r#"{{"id":"c1","model":"m","created":7,"choices":[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}]}}"#,
        serde_json::to_string(content).unwrap()
    )
}

#[test]
fn text_tokens_and_identity_are_remembered() {
    let mut d = Delivered::default();
    d.observe(
        br#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
    );
    d.observe(chunk("Hello").as_bytes());
    d.observe(chunk(", \"world\"").as_bytes());
    assert_eq!(d.text, "Hello, \"world\"");
    assert_eq!(d.tokens, 2);
    assert_eq!(d.blocked, None);
    let id = d.identity.unwrap();
    assert_eq!(id.fields[0], ("id", serde_json::json!("c1")));
    assert_eq!(id.fields.len(), 2, "only the fields the first chunk had");
}

#[test]
fn what_cannot_be_continued_correctly_blocks_a_resume() {
    let tool = br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}"#;
    let two = br#"{"choices":[{"index":1,"delta":{"content":"b"}}]}"#;
    let done = br#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    for (event, why) in [
        (&tool[..], "tool call"),
        (two, "several choices"),
        (done, "finished"),
        (b"{not json", "not a chat chunk"),
    ] {
        let mut d = Delivered::default();
        d.observe(chunk("a").as_bytes());
        d.observe(event);
        assert!(d.blocked.unwrap().contains(why), "{:?}", d.blocked);
        assert!(d.text.is_empty(), "the text is freed");
    }
    let mut d = Delivered::default();
    d.observe(chunk(&"x".repeat(MAX_REMEMBERED + 1)).as_bytes());
    assert!(d.blocked.unwrap().contains("longer than"));
}

#[test]
fn token_ids_are_recorded_while_every_chunk_has_them() {
    let mut d = Delivered::default();
    d.observe(
        br#"{"id":"c1","prompt_token_ids":[1,2,3],"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
    );
    d.observe(br#"{"choices":[{"index":0,"delta":{"content":"ab"},"token_ids":[10,11]}]}"#);
    d.observe(br#"{"choices":[{"index":0,"delta":{},"token_ids":[12]}]}"#);
    let ids = d.ids.as_ref().unwrap();
    assert_eq!(ids.prompt, [1, 2, 3]);
    assert_eq!(ids.generated, [10, 11, 12], "ids without text count too");
    assert_eq!((d.text.as_str(), d.tokens), ("ab", 3));
    d.observe(chunk("c").as_bytes());
    assert_eq!(d.ids, Err("a chunk came without its token ids"));
    assert_eq!(d.text, "abc", "text goes on");
    let mut plain = Delivered::default();
    plain.observe(chunk("x").as_bytes());
    assert!(plain.ids.is_err(), "no prompt ids: no exact resume");
}

#[test]
fn frames_split_into_events_and_their_data() {
    let frame = b": ping\n\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\r\rdata: [DONE]\n\n";
    let ev = events(frame);
    assert_eq!(ev.len(), 4);
    assert_eq!(ev[0].0, b": ping\n\n");
    assert_eq!(ev[0].1, None);
    assert_eq!(ev[1].1.as_deref(), Some(&b"{\"a\":1}"[..]));
    assert_eq!(ev[1].0, b"data: {\"a\":1}\r\n\r\n");
    assert_eq!(ev[2].1.as_deref(), Some(&b"x\ny"[..]));
    assert_eq!(ev[3].1.as_deref(), Some(&b"[DONE]"[..]));
    let joined: Vec<u8> = ev.iter().flat_map(|e| e.0.to_vec()).collect();
    assert_eq!(joined, frame, "every byte belongs to one event");
}
