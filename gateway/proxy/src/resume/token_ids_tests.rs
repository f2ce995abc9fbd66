use super::*;

fn map(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap()
}

#[test]
fn the_ids_are_asked_for_last_so_they_win_over_a_clients_false() {
    let body = Bytes::from_static(br#"{"model":"m","return_token_ids":false} "#);
    let asked = ask(&body);
    assert_eq!(
        &asked[..],
        br#"{"model":"m","return_token_ids":false,"return_token_ids":true} "#
    );
    assert!(!client_asked(&body));
    assert!(client_asked(br#"{"model":"m","return_token_ids":true}"#));
}

#[test]
fn ids_are_stripped_from_prompt_and_choices_and_nothing_else() {
    let data = br#"{"id":"c","prompt_token_ids":[1,2],"choices":[{"index":0,"delta":{"content":"token_ids"},"token_ids":[7]}]}"#;
    let out = strip(data).unwrap();
    let json: Value =
        serde_json::from_slice(out.strip_prefix(b"data: ").unwrap().trim_ascii_end()).unwrap();
    assert!(json.get("prompt_token_ids").is_none());
    assert!(json["choices"][0].get("token_ids").is_none());
    assert_eq!(json["choices"][0]["delta"]["content"], "token_ids");
    assert_eq!(json["id"], "c");
    assert!(strip(br#"{"choices":[]}"#).is_none(), "nothing to strip");
}

#[test]
fn the_continuation_is_a_completion_of_the_id_sequence_with_the_caps_lowered() {
    let request = map(
        r#"{"model":"chat","messages":[{"role":"user","content":"hi"}],"stream":true,
            "stream_options":{"include_usage":true},"max_completion_tokens":10,
            "min_tokens":4,"temperature":0,"seed":7,"stop":["\n\n"]}"#,
    );
    let ids = TokenIds {
        prompt: vec![1, 2, 3],
        generated: vec![100, 101, 102],
    };
    let body: Value = serde_json::from_slice(&body(&request, "llama", &ids).unwrap()).unwrap();
    assert_eq!(body["model"], "llama");
    assert_eq!(body["prompt"], serde_json::json!([1, 2, 3, 100, 101, 102]));
    assert_eq!(body["max_tokens"], 7);
    assert_eq!(body["min_tokens"], 1);
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["seed"], 7);
    assert_eq!(body["stop"][0], "\n\n");
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["return_token_ids"], true);
    for gone in ["messages", "max_completion_tokens"] {
        assert!(body.get(gone).is_none(), "{gone} in {body}");
    }
    let spent = TokenIds {
        prompt: vec![1],
        generated: vec![5; 10],
    };
    assert!(body_err(&request, &spent).contains("max_tokens"));
}

fn body_err(request: &Map<String, Value>, ids: &TokenIds) -> String {
    body(request, "m", ids).unwrap_err()
}

#[test]
fn requests_whose_answer_the_chat_endpoint_shapes_are_not_continued_from_ids() {
    for (json, why) in [
        (
            r#"{"tools":[{"type":"function","function":{"name":"f"}}]}"#,
            "tools",
        ),
        (
            r#"{"response_format":{"type":"json_object"}}"#,
            "structured",
        ),
        (r#"{"guided_regex":"a+"}"#, "structured"),
        (r#"{"logprobs":true,"top_logprobs":2}"#, "log prob"),
        (r#"{"n":2}"#, "several"),
    ] {
        assert!(unsuited(&map(json)).unwrap().contains(why), "{json}");
    }
    for fine in [
        r#"{"tools":[{"type":"function"}],"tool_choice":"none"}"#,
        r#"{"response_format":{"type":"text"},"logprobs":false,"n":1}"#,
    ] {
        assert_eq!(unsuited(&map(fine)), None, "{fine}");
    }
}

#[test]
fn completion_chunks_become_chat_deltas() {
    let mut chunk = map(
        r#"{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"tok5 ",
            "logprobs":null,"finish_reason":null,"prompt_token_ids":[1],"token_ids":[105]}]}"#,
    );
    to_chat(&mut chunk);
    assert_eq!(chunk["object"], "chat.completion.chunk");
    let choice = &chunk["choices"][0];
    assert_eq!(choice["delta"]["content"], "tok5 ");
    assert_eq!(choice["token_ids"], serde_json::json!([105]));
    assert!(choice.get("text").is_none() && choice.get("prompt_token_ids").is_none());
    assert_eq!(path("/v1/chat/completions"), "/v1/completions");
}
