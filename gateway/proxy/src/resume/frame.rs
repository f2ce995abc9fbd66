//! What of a frame (a run of whole events) from the replica streaming the
//! client's answer goes to the client: each event's data is recorded
//! ([`Delivered`]), and the token ids the gateway asked for
//! (`resume: token_ids`) are taken out unless the client asked for them.
//! A frame without ids goes on as it came (no copy).

use bytes::{Bytes, BytesMut};

use super::delivered::{Delivered, events};
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
