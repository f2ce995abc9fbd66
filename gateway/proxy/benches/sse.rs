//! What an SSE stream costs per chunk on its way through `GuardedBody`:
//! whole-event framing (`EventFramer`) and the end watch (`SseWatch`), for
//! a 256-token chat stream read one token per chunk, as a fast replica
//! sends it. `push` copies each chunk into the framer's buffer;
//! `push_bytes` hands whole events on as slices of the chunk.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_proxy::events::EventFramer;
use switchyard_proxy::sse::SseWatch;

/// The watch as it was: every chunk copied behind the kept tail, then a
/// naive scan (the baseline the new one is measured against).
#[derive(Default)]
struct CopyingWatch {
    finished: bool,
    tail: Vec<u8>,
}

impl CopyingWatch {
    fn feed(&mut self, chunk: &[u8]) {
        if self.finished {
            return;
        }
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(chunk);
        let find = |n: &[u8]| window.windows(n.len()).any(|w| w == n);
        self.finished = find(b"data: [DONE]") || find(b"\"finish_reason\":\"");
        let keep = window.len().min(48);
        self.tail = window.split_off(window.len() - keep);
    }
}

fn chunks() -> Vec<Bytes> {
    let mut out: Vec<Bytes> = (0..256)
        .map(|i| {
            Bytes::from(format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i}\"}},\"finish_reason\":null}}]}}\n\n"
            ))
        })
        .collect();
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

fn stream(c: &mut Criterion) {
    let chunks = chunks();
    c.bench_function("sse_stream_257_chunks_before", |b| {
        b.iter(|| {
            let (mut framer, mut watch) = (EventFramer::default(), CopyingWatch::default());
            for chunk in &chunks {
                let framed = framer.push(chunk).unwrap();
                watch.feed(&framed.events);
            }
            black_box(watch.finished)
        })
    });
    c.bench_function("sse_stream_257_chunks", |b| {
        b.iter(|| {
            let (mut framer, mut watch) = (EventFramer::default(), SseWatch::default());
            for chunk in &chunks {
                let framed = framer.push_bytes(chunk.clone()).unwrap();
                watch.feed(&framed.events);
            }
            black_box(watch.finished())
        })
    });
}

criterion_group!(benches, stream);
criterion_main!(benches);
