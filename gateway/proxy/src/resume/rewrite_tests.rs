use super::*;

fn identity() -> Identity {
    Identity {
        fields: vec![
            ("id", serde_json::json!("first")),
            ("model", serde_json::json!("chat")),
        ],
    }
}

fn chunk(content: &str, finish: Option<&str>) -> Vec<u8> {
    serde_json::json!({
        "id": "second", "model": "llama", "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    })
    .to_string()
    .into_bytes()
}

fn text(r: &Rewritten) -> Option<String> {
    let event = r.event.as_ref()?;
    let json = event.strip_prefix(b"data: ").unwrap();
    let v: Value = serde_json::from_slice(json.trim_ascii_end()).unwrap();
    assert_eq!(v["id"], "first");
    assert_eq!(v["model"], "chat");
    Some(
        v["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

#[test]
fn regenerate_skips_exactly_the_delivered_text() {
    let mut rw = Rewrite::new(identity(), Strategy::Regenerate, "tok0 tok1 to", 3);
    let role = br#"{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
    assert!(rw.apply(role).unwrap().event.is_none(), "no second role");
    assert!(rw.apply(&chunk("tok0 ", None)).unwrap().event.is_none());
    assert!(rw.apply(&chunk("tok1 ", None)).unwrap().event.is_none());
    let r = rw.apply(&chunk("tok2 ", None)).unwrap();
    assert_eq!(
        text(&r).as_deref(),
        Some("k2 "),
        "the straddling chunk is cut"
    );
    let r = rw.apply(&chunk("", Some("stop"))).unwrap();
    assert!(r.event.is_some(), "the finish is sent");
    assert!(rw.apply(b"[DONE]").unwrap().event.is_some());
}

#[test]
fn a_different_or_shorter_answer_is_refused() {
    let mut rw = Rewrite::new(identity(), Strategy::Regenerate, "tok0 tok1 ", 2);
    assert!(rw.apply(&chunk("tok0 ", None)).is_ok());
    assert!(
        rw.apply(&chunk("TOK1 ", None))
            .unwrap_err()
            .contains("differs")
    );
    let mut rw = Rewrite::new(identity(), Strategy::Regenerate, "tok0 tok1 ", 2);
    assert!(rw.apply(&chunk("tok0 ", Some("stop"))).is_err());
    let mut rw = Rewrite::new(identity(), Strategy::Regenerate, "tok0 ", 1);
    assert!(rw.apply(b"[DONE]").is_err());
}

#[test]
fn token_ids_completion_chunks_read_as_the_chat_stream() {
    let mut rw = Rewrite::new(identity(), Strategy::TokenIds, "tok0 tok1 ", 2);
    let chunk = br#"{"id":"cmpl-9","object":"text_completion","model":"llama","choices":[{"index":0,"text":"tok2 ","finish_reason":null,"token_ids":[102],"prompt_token_ids":[1,100,101]}]}"#;
    let r = rw.apply(chunk).unwrap();
    assert_eq!(text(&r).as_deref(), Some("tok2 "));
    let sent: Value = serde_json::from_slice(
        r.event
            .unwrap()
            .strip_prefix(b"data: ")
            .unwrap()
            .trim_ascii_end(),
    )
    .unwrap();
    assert_eq!(sent["object"], "chat.completion.chunk");
    assert_eq!(sent["choices"][0]["token_ids"], serde_json::json!([102]));
    let silent =
        br#"{"object":"text_completion","choices":[{"index":0,"text":"","token_ids":[7]}]}"#;
    assert!(
        rw.apply(silent).unwrap().event.is_some(),
        "ids without text are kept"
    );
    let usage = br#"{"object":"text_completion","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
    let r = rw.apply(usage).unwrap();
    let sent: Value = serde_json::from_slice(
        r.event
            .unwrap()
            .strip_prefix(b"data: ")
            .unwrap()
            .trim_ascii_end(),
    )
    .unwrap();
    assert_eq!(sent["usage"]["prompt_tokens"], 10);
    assert_eq!(sent["usage"]["completion_tokens"], 7);
}

#[test]
fn prefill_passes_new_text_and_counts_the_delivered_tokens_as_completion() {
    let mut rw = Rewrite::new(identity(), Strategy::Prefill, "tok0 tok1 ", 2);
    let r = rw.apply(&chunk("tok2 ", None)).unwrap();
    assert_eq!(text(&r).as_deref(), Some("tok2 "));
    let usage = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":14,"total_tokens":44}}"#;
    let r = rw.apply(usage).unwrap();
    assert_eq!(
        r.usage,
        Some(Usage {
            prompt_tokens: 30,
            completion_tokens: 14
        }),
        "what the replica reported, for its cost"
    );
    let sent: Value = serde_json::from_slice(
        r.event
            .unwrap()
            .strip_prefix(b"data: ")
            .unwrap()
            .trim_ascii_end(),
    )
    .unwrap();
    assert_eq!(sent["usage"]["prompt_tokens"], 28);
    assert_eq!(sent["usage"]["completion_tokens"], 16);
    assert_eq!(sent["usage"]["total_tokens"], 44);
}
