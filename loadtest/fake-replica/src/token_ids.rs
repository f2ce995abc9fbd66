//! vLLM's `return_token_ids`, deterministically, with a tokenizer-like
//! mapping a continuation can be checked against: a prompt is one id per
//! word (a hash, below [`ANSWER_BASE`]) between role markers, as a chat
//! template renders it; answer token `k` (`tok<k> `) is `ANSWER_BASE + k`.
//! A `/v1/completions` prompt given as ids that ends in answer ids
//! `ANSWER_BASE, ANSWER_BASE + 1, ..., ANSWER_BASE + m - 1` is continued
//! from token `m`, exactly as the model would go on after its own tokens.

use serde::Deserialize;
use serde_json::value::RawValue;

/// Id of answer token 0; prompt ids are all below it.
pub const ANSWER_BASE: u32 = 100_000;
/// Begin of sequence.
const BOS: u32 = 1;
/// Marker ids: a message's role, then the assistant's turn.
const SYSTEM: u32 = 2;
const USER: u32 = 3;
const ASSISTANT: u32 = 4;
const END_OF_TURN: u32 = 5;

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Option<String>,
}

/// The id of answer token `k`.
pub(crate) fn answer_id(k: u32) -> u32 {
    ANSWER_BASE + k
}

/// A word's id: an FNV-1a hash folded below the answer ids.
fn word_id(word: &str) -> u32 {
    let h = word.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    10 + h % (ANSWER_BASE - 10)
}

fn words(text: &str, out: &mut Vec<u32>) {
    out.extend(text.split_whitespace().map(word_id));
}

/// A chat request's prompt ids (the template applied, the assistant's
/// turn opened).
pub(crate) fn chat_prompt(messages: Option<&RawValue>) -> Vec<u32> {
    let messages: Vec<Message> = messages
        .and_then(|m| serde_json::from_str(m.get()).ok())
        .unwrap_or_default();
    let mut ids = vec![BOS];
    for m in &messages {
        ids.push(match m.role.as_str() {
            "system" | "developer" => SYSTEM,
            "assistant" => ASSISTANT,
            _ => USER,
        });
        words(m.content.as_deref().unwrap_or(""), &mut ids);
        ids.push(END_OF_TURN);
    }
    ids.push(ASSISTANT);
    ids
}

/// A completion request's prompt: its ids when it is a list of ids
/// (`Ok`), else its text's ids (`Err`, the text tokenized).
pub(crate) fn completion_prompt(prompt: Option<&RawValue>) -> Result<Vec<u32>, Vec<u32>> {
    let Some(raw) = prompt else {
        return Err(vec![BOS]);
    };
    if let Ok(ids) = serde_json::from_str::<Vec<u32>>(raw.get()) {
        return Ok(ids);
    }
    let text: String = serde_json::from_str(raw.get()).unwrap_or_default();
    let mut ids = vec![BOS];
    words(&text, &mut ids);
    Err(ids)
}

/// Where the answer goes on after `prompt`: `m` when it ends in answer
/// tokens `0..m`, else 0 (a fresh answer).
pub(crate) fn continues_at(prompt: &[u32]) -> u32 {
    let run = prompt
        .iter()
        .rev()
        .take_while(|id| **id >= ANSWER_BASE)
        .count();
    let tail = &prompt[prompt.len() - run..];
    let in_order = tail
        .iter()
        .enumerate()
        .all(|(k, id)| *id == answer_id(k as u32));
    if in_order { run as u32 } else { 0 }
}

/// `[1,2,3]`.
pub(crate) fn json(ids: &[u32]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_deterministic_and_answers_continue_after_their_own_ids() {
        let m = RawValue::from_string(r#"[{"role":"user","content":"say hi"}]"#.into()).unwrap();
        let a = chat_prompt(Some(&m));
        assert_eq!(a, chat_prompt(Some(&m)));
        assert_eq!(a.len(), 6, "BOS, role, two words, end, assistant");
        assert!(a.iter().all(|id| *id < ANSWER_BASE));
        let mut p = a.clone();
        assert_eq!(continues_at(&p), 0);
        p.extend((0..5).map(answer_id));
        assert_eq!(continues_at(&p), 5);
        p.push(answer_id(9));
        assert_eq!(continues_at(&p), 0, "not the answer's own ids in order");
        let ids = RawValue::from_string("[1,2,100000]".into()).unwrap();
        assert_eq!(completion_prompt(Some(&ids)), Ok(vec![1, 2, 100_000]));
        let text = RawValue::from_string(r#""a b""#.into()).unwrap();
        assert_eq!(completion_prompt(Some(&text)).unwrap_err().len(), 3);
    }
}
