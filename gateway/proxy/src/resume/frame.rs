//! What of a frame (a run of whole events) from the replica streaming the
//! client's answer goes to the client: each event's data is recorded
//! ([`Delivered`]), and the token ids the gateway asked for
//! (`resume: token_ids`) are taken out unless the client asked for them.
//! A frame without ids goes on as it came (no copy). A continuation's
//! frames are rewritten first ([`Rewrite`]).

use bytes::{Bytes, BytesMut};

use super::delivered::{Delivered, events};
use super::rewrite::Rewrite;
use super::token_ids;

/// Records `frame`'s events in `delivered`; the bytes to send: `frame`,
/// or with `strip` its events without their token ids.
pub fn pass_on(frame: Bytes, delivered: &mut Delivered, strip: bool) -> Bytes {
    let mut stripped: Option<BytesMut> = None;
    for (raw, data) in events(&frame) {
        let Some(data) = data else {
            if let Some(out) = &mut stripped {
                out.extend_from_slice(raw);
            }
            continue;
        };
        delivered.observe(&data);
        let bare = if strip { token_ids::strip(&data) } else { None };
        match (bare, &mut stripped) {
            (Some(bare), Some(out)) => out.extend_from_slice(&bare),
            (Some(bare), None) => {
                // The first event with ids: what came before it as it was.
                let before = raw.as_ptr() as usize - frame.as_ptr() as usize;
                let mut out = BytesMut::from(&frame[..before]);
                out.extend_from_slice(&bare);
                stripped = Some(out);
            }
            (None, Some(out)) => out.extend_from_slice(raw),
            (None, None) => {}
        }
    }
    stripped.map_or(frame, BytesMut::freeze)
}

/// A continuation's frame: each event made the rest of the client's
/// stream by `rewrite`, recorded, and stripped of ids with `strip`;
/// `estimate` gets the first stream's prompt tokens when the replica
/// reports its usage. The bytes to send, and why the stream must end when
/// an event cannot be made correct (what came before it still goes).
pub fn pass_rewritten(
    frame: &Bytes,
    rewrite: &mut Rewrite,
    delivered: &mut Delivered,
    strip: bool,
    mut estimate: impl FnMut(u64),
) -> (Bytes, Option<String>) {
    let mut out = BytesMut::new();
    for (raw, data) in events(frame) {
        let Some(data) = data else {
            out.extend_from_slice(raw);
            continue;
        };
        let rewritten = match rewrite.apply(&data) {
            Ok(rewritten) => rewritten,
            Err(why) => return (out.freeze(), Some(why)),
        };
        if let Some(usage) = rewritten.usage {
            estimate(rewrite.original_prompt(usage));
        }
        if let Some(event) = rewritten.event {
            let data = event.strip_prefix(b"data: ").map(<[u8]>::trim_ascii_end);
            if let Some(data) = data {
                delivered.observe(data);
            }
            let bare = data.filter(|_| strip).and_then(token_ids::strip);
            out.extend_from_slice(bare.as_ref().unwrap_or(&event));
        }
    }
    (out.freeze(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_recorded_then_taken_out_and_the_rest_kept_as_is() {
        let frame = Bytes::from_static(
            b": ping\n\ndata: {\"id\":\"c\",\"prompt_token_ids\":[1],\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"token_ids\":[9]}]}\n\ndata: [DONE]\n\n",
        );
        let mut d = Delivered::default();
        let out = pass_on(frame.clone(), &mut d, true);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.starts_with(": ping\n\ndata: {"), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(!text.contains("token_ids"), "{text}");
        assert_eq!(d.ids.as_ref().unwrap().generated, [9]);
        assert_eq!(d.text, "a");
        let mut d = Delivered::default();
        let kept = pass_on(frame.clone(), &mut d, false);
        assert_eq!(kept.as_ptr(), frame.as_ptr(), "not stripped: not copied");
    }
}
