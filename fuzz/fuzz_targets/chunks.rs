//! Shared by the targets: split a fuzz input into chunks, so every parser
//! is also fed the same bytes cut at arbitrary points.

/// The first byte picks chunk lengths (1..=16, cycling through the rest of
/// the input's own bytes); the remainder is the payload.
pub fn split(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let Some((&seed, payload)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let mut chunks = Vec::new();
    let mut rest = payload;
    let mut i = usize::from(seed);
    while !rest.is_empty() {
        let step = payload.get(i % payload.len().max(1)).copied().unwrap_or(seed);
        let len = (usize::from(step ^ seed) % 16 + 1).min(rest.len());
        let (head, tail) = rest.split_at(len);
        chunks.push(head);
        rest = tail;
        i = i.wrapping_add(7);
    }
    (chunks, payload)
}
