//! Reading `usage` off an OpenAI-shaped answer as it streams past, for
//! cost accounting.
//!
//! The scan looks for the `"usage"` key in each chunk (SIMD `memmem`) and
//! keeps only the bytes from the last occurrence on (a few hundred bytes),
//! so a non-streamed JSON answer and an SSE stream whose last chunk carries
//! usage (`stream_options.include_usage`, Bedrock's metadata event) are
//! read the same way, without parsing the answer. Inside JSON strings the
//! key's quotes are escaped (`\"usage\"`), so content cannot fake it.
//!
//! The figures are booked when the body is dropped: after its last byte,
//! or when the client left early (what was seen by then; nothing seen is
//! `unknown_usage`, never a guess).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use memchr::memmem;
use serde::Deserialize;

use std::sync::Arc;

use switchyard_config::Cost;

const KEY: &[u8] = b"\"usage\"";
/// The key's searcher, built once (building one per chunk cost more than
/// the search of a whole answer).
static FINDER: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(KEY));
/// Most bytes kept after the key: OpenAI's usage with its token details
/// is ~300 bytes. Allocated once a key is seen, at the size taken: an
/// inline array made every metered body 1 KiB bigger, zeroed and copied
/// on every request, and held through a whole stream.
const CAPTURE_MAX: usize = 1024;

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens (absent for embeddings).
    #[serde(default)]
    pub completion_tokens: u64,
}

/// Incremental finder of the last valid `usage` object.
#[derive(Debug, Default)]
pub struct UsageScan {
    /// Bytes from the latest `"usage"` key on.
    capture: Vec<u8>,
    capturing: bool,
    /// The last bytes of the previous chunk, for a key split across two.
    tail: [u8; 6],
    tail_len: usize,
    found: Option<Usage>,
}

impl UsageScan {
    /// Scans the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        // A key split across the boundary: tail + head of this chunk.
        if self.tail_len > 0 && !chunk.is_empty() {
            let mut joint = [0u8; 12];
            let head = chunk.len().min(6);
            joint[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
            joint[self.tail_len..self.tail_len + head].copy_from_slice(&chunk[..head]);
            if let Some(at) = FINDER.find(&joint[..self.tail_len + head]) {
                self.restart();
                self.capture_range(&joint[at..self.tail_len]);
            }
        }
        // Each key ends the previous capture (parsed on the way: the real
        // usage may be followed by a `"usage":null`) and starts a new one.
        let mut from = 0;
        for at in FINDER.find_iter(chunk) {
            if self.capturing {
                self.capture_range(&chunk[from..at]);
            }
            self.restart();
            from = at;
        }
        if self.capturing {
            self.capture_range(&chunk[from..]);
        }
        self.keep_tail(chunk);
    }

    /// The usage found, if any.
    pub fn finish(&mut self) -> Option<Usage> {
        if self.capturing {
            let parsed = parse(&self.capture);
            self.note(parsed);
            self.capturing = false;
        }
        self.found
    }

    fn note(&mut self, usage: Option<Usage>) {
        if usage.is_some() {
            self.found = usage;
        }
    }

    fn restart(&mut self) {
        if self.capturing {
            let parsed = parse(&self.capture);
            self.note(parsed);
        }
        self.capture.clear();
        self.capturing = true;
    }

    fn capture_range(&mut self, bytes: &[u8]) {
        let take = bytes.len().min(CAPTURE_MAX - self.capture.len());
        if take > 0 && self.capture.capacity() == 0 {
            self.capture = crate::spare::buffer(take);
        }
        self.capture.extend_from_slice(&bytes[..take]);
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        let n = chunk.len().min(6);
        self.tail[..n].copy_from_slice(&chunk[chunk.len() - n..]);
        self.tail_len = n;
    }
}

impl Drop for UsageScan {
    fn drop(&mut self) {
        crate::spare::recycle_buffer(std::mem::take(&mut self.capture));
    }
}

/// `"usage"` `:` `{...}` at the start of `bytes` → the counts.
fn parse(bytes: &[u8]) -> Option<Usage> {
    let rest = bytes.strip_prefix(KEY)?;
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    if !rest.starts_with(b"{") {
        return None;
    }
    usage_object(rest)
}

/// The counts of the `usage` object at the start of `bytes` (what follows
/// it is ignored). Public for the fuzz target, which checks that on valid
/// JSON this agrees with serde's reading.
pub fn usage_object(bytes: &[u8]) -> Option<Usage> {
    match plain_usage(bytes) {
        Some(found) => found,
        // Anything unusual is serde's to judge.
        None => serde_json::Deserializer::from_slice(bytes)
            .into_iter::<Usage>()
            .next()?
            .ok(),
    }
}

/// The usual `usage` object, read without serde (its generic parse was
/// 3 % of a request's instructions): keys without escapes, counts as
/// plain whole numbers, other values skipped. `Some(None)`: not a usage
/// object (the object is cut off); `None`: something this reader does not
/// take on (an escape in a key, a count that is not a plain whole number,
/// a key twice), left to serde. On valid JSON both agree (fuzzed); on
/// JSON serde refuses, the counts may still be read here.
fn plain_usage(bytes: &[u8]) -> Option<Option<Usage>> {
    let mut r = Reader { bytes, at: 1 };
    let mut usage = Usage::default();
    let (mut prompt, mut completion) = (false, false);
    r.space();
    if !bytes.starts_with(b"{") {
        return None;
    }
    if r.peek() == Some(b'}') {
        return Some(Some(usage));
    }
    loop {
        r.space();
        let Some(key) = r.key()? else {
            return Some(None);
        };
        r.space();
        if r.next() != Some(b':') {
            return None;
        }
        r.space();
        let slot = match key {
            b"prompt_tokens" => Some((&mut usage.prompt_tokens, &mut prompt)),
            b"completion_tokens" => Some((&mut usage.completion_tokens, &mut completion)),
            _ => None,
        };
        match slot {
            Some((_, seen)) if *seen => return None,
            Some((count, seen)) => {
                *count = r.count()?;
                *seen = true;
            }
            None => r.skip_value()?,
        }
        r.space();
        match r.next() {
            Some(b',') => {}
            Some(b'}') => return Some(Some(usage)),
            Some(_) => return None,
            None => return Some(None),
        }
    }
}

/// A cursor over JSON bytes, for [`plain_usage`].
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A key without escapes; `Some(None)`: the bytes end first.
    fn key(&mut self) -> Option<Option<&'a [u8]>> {
        match self.next() {
            Some(b'"') => {}
            Some(_) => return None,
            None => return Some(None),
        }
        let bytes: &'a [u8] = self.bytes;
        let rest = &bytes[self.at..];
        let Some(len) = memchr::memchr2(b'"', b'\\', rest) else {
            return Some(None);
        };
        if rest[len] == b'\\' {
            return None;
        }
        self.at += len + 1;
        Some(Some(&rest[..len]))
    }

    /// A whole number as serde reads a `u64`: digits, no leading zero,
    /// no fraction or exponent, in range.
    fn count(&mut self) -> Option<u64> {
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        let more = matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !more).then_some(n)
    }

    /// Skips one value of any kind (strings with their escapes, nested
    /// objects and arrays); `None` when the bytes end first.
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.next()? {
                b'"' => loop {
                    let rest = &self.bytes[self.at..];
                    let i = memchr::memchr2(b'"', b'\\', rest)?;
                    self.at += i + 1;
                    if rest[i] == b'"' {
                        break;
                    }
                    self.next()?;
                },
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.checked_sub(1)?,
                _ => {
                    // A number or literal: up to what ends it. Anything
                    // else is not for this reader.
                    let start = self.at - 1;
                    while !matches!(
                        self.peek(),
                        None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                    ) {
                        self.at += 1;
                    }
                    let token = &self.bytes[start..self.at];
                    let number = token
                        .iter()
                        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(b));
                    if !number && !matches!(token, b"true" | b"false" | b"null") {
                        return None;
                    }
                }
            }
            self.space();
            if depth == 0 {
                return Some(());
            }
            if self.peek() == Some(b',') || self.peek() == Some(b':') {
                self.at += 1;
            }
        }
    }
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    /// What these tokens cost at `price`, in billionths of its unit
    /// (integer, so ledgers add it exactly and lock-free). The one pricing
    /// rule: the cost ledger and tenant budgets both use it.
    pub fn cost_nano(&self, price: &Cost) -> u64 {
        cost_nano(self.prompt_tokens, self.completion_tokens, price)
    }
}

/// `input` and `output` tokens at `price`, in billionths of its unit.
pub fn cost_nano(input: u64, output: u64, price: &Cost) -> u64 {
    let spend =
        input as f64 / 1000.0 * price.input_per_1k + output as f64 / 1000.0 * price.output_per_1k;
    (spend * 1e9).round() as u64
}

/// Where an answer's usage is booked (the cost ledger implements it).
pub trait UsageSink: Send + Sync {
    /// One answer is done: its usage (`None`: it reported none), priced
    /// with `price`, its replica's price when it was served.
    fn book(&self, usage: Option<Usage>, price: &Cost);
}

/// Meters one answer: the scan the body tap feeds, booked on drop into
/// the cost ledger's sink and the caller's tenant account, either of
/// which may be absent.
pub struct Meter {
    sinks: [Option<Arc<dyn UsageSink>>; 2],
    price: Cost,
    scan: UsageScan,
}

impl Meter {
    /// A meter booking into `ledger` and `tenant` at `price`; `None` when
    /// neither is there.
    pub fn new(
        ledger: Option<Arc<dyn UsageSink>>,
        tenant: Option<Arc<dyn UsageSink>>,
        price: Cost,
    ) -> Option<Self> {
        (ledger.is_some() || tenant.is_some()).then(|| Self {
            sinks: [ledger, tenant],
            price,
            scan: UsageScan::default(),
        })
    }
}

impl Meter {
    /// Scans the next chunk of the answer.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.scan.feed(chunk);
    }

    /// Books `usage` unless the answer reported its own: what a broken
    /// attempt that a resume replaced is known to have cost. The answer
    /// is over: nothing is fed after this.
    pub fn estimate(&mut self, usage: Usage) {
        if self.scan.finish().is_none() {
            self.scan.found = Some(usage);
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let usage = self.scan.finish();
        for sink in self.sinks.iter().flatten() {
            sink.book(usage, &self.price);
        }
    }
}

pin_project_lite::pin_project! {
    /// Passes a body through unchanged while scanning it for `usage`; books
    /// the result when dropped.
    pub struct UsageTap<B> {
        #[pin]
        inner: B,
        meter: Meter,
    }
}

impl<B> UsageTap<B> {
    /// Taps `inner`, booking into `meter`.
    pub fn new(inner: B, meter: Meter) -> Self {
        Self { inner, meter }
    }
}

impl<B: Body<Data = Bytes>> Body for UsageTap<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(data) = f.data_ref()
        {
            this.meter.scan.feed(data);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&str]) -> Option<Usage> {
        let mut s = UsageScan::default();
        for c in chunks {
            s.feed(c.as_bytes());
        }
        s.finish()
    }

    const U: Usage = Usage {
        prompt_tokens: 12,
        completion_tokens: 3,
    };

    #[test]
    fn usage_is_found_in_json_and_sse_whatever_the_chunking() {
        let json = r#"{"id":"x","choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 99}"}}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        assert_eq!(scan(&[json]), Some(U));
        for cut in 1..json.len() {
            assert_eq!(scan(&[&json[..cut], &json[cut..]]), Some(U), "cut at {cut}");
        }
        let sse = [
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}\n\n",
            "data: [DONE]\n\n",
        ];
        assert_eq!(scan(&sse), Some(U));
        let all = sse.concat();
        assert_eq!(scan(&[&all]), Some(U));
    }

    /// The reader without serde agrees with serde on every usage shape.
    #[test]
    fn the_plain_reader_agrees_with_serde() {
        let serde = |b: &[u8]| {
            serde_json::Deserializer::from_slice(b)
                .into_iter::<Usage>()
                .next()
                .and_then(Result::ok)
        };
        for text in [
            r#"{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}"#,
            r#"{ "prompt_tokens" : 12 , "completion_tokens" : 3 } , "x": 1}"#,
            r#"{"prompt_tokens":12,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":null},"completion_tokens_details":{"reasoning_tokens":7,"list":[1,"a\"}",{"b":[]}]},"completion_tokens":3}"#,
            r#"{"completion_tokens":3}"#,
            r#"{}"#,
            r#"{"note":"a \\ b","prompt_tokens":0,"completion_tokens":18446744073709551615}"#,
        ] {
            let plain = plain_usage(text.as_bytes());
            assert_eq!(plain, Some(serde(text.as_bytes())), "{text}");
            assert!(plain.flatten().is_some(), "{text}");
        }
        // What the plain reader leaves to serde, and what both refuse.
        for text in [
            r#"{"prompt_tokens":1.0,"completion_tokens":3}"#,
            r#"{"prompt_tokens":012}"#,
            r#"{"prompt_tokens":-1}"#,
            r#"{"prompt_tokens":18446744073709551616}"#,
            r#"{"prompt_tokens":1,"prompt_tokens":2}"#,
            r#"{"prompt\u005ftokens":5}"#,
            r#"{"prompt_tokens":"12"}"#,
            r#"{"prompt_tokens":12,"completion_tokens":3"#,
            r#"{"prompt_tokens" 12}"#,
            r#"{"flag":tru,"prompt_tokens":1}"#,
        ] {
            assert_eq!(
                plain_usage(text.as_bytes()).flatten(),
                None,
                "{text}: the plain reader read it"
            );
            let capture = format!("\"usage\":{text}");
            assert_eq!(parse(capture.as_bytes()), serde(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn no_usage_is_none_not_zero() {
        assert_eq!(scan(&[r#"{"choices":[]}"#]), None);
        assert_eq!(
            scan(&["data: {\"usage\":null}\n\n", "data: [DONE]\n\n"]),
            None
        );
        assert_eq!(scan(&[r#"{"usage":{"prompt_tokens":"#]), None);
    }
}
