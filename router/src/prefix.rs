//! The approximate prefix cache of each replica: which prompt blocks this
//! gateway has sent it, so a request can go where the longest prefix of its
//! prompt is probably still in the engine's KV cache (the Gateway API
//! Inference Extension's "approximate prefix index", proposal 0602).
//!
//! A prompt is cut into blocks of `prefix_block_bytes`; block *i*'s hash
//! covers its bytes and block *i − 1*'s hash, so one block identifies its
//! whole prefix and a lookup walks the blocks until the first miss.
//!
//! Each replica's index is a direct-mapped table of `prefix_index_blocks`
//! atomic slots: a block lives in slot `hash % capacity`, a newer block
//! that maps to the same slot evicts it. That ages the index the way the
//! engine's LRU ages its cache (what was sent long ago is gone first, on
//! average) with O(1) lock-free lookups and inserts, bounded memory
//! (8 bytes a block), and no allocation until a replica first serves a
//! `prefix_cache` group.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hash::mix;

/// The chained block hashes of `prompt`: successive `block_bytes` chunks
/// (a trailing partial chunk is not a block: engines cache full blocks
/// only), at most `max_blocks`.
pub fn prefix_blocks(prompt: &[u8], block_bytes: usize, max_blocks: usize) -> Vec<u64> {
    let block_bytes = block_bytes.max(1);
    let mut out = Vec::with_capacity((prompt.len() / block_bytes).min(max_blocks));
    let mut prev: u64 = 0x5157_4954_4348_5952; // any fixed seed
    for chunk in prompt.chunks_exact(block_bytes).take(max_blocks) {
        let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ prev;
        for b in chunk {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01B3);
        }
        // 0 marks an empty slot in the index.
        prev = mix(h).max(1);
        out.push(prev);
    }
    out
}

/// One replica's approximate cache.
#[derive(Debug, Default)]
pub struct PrefixIndex {
    slots: OnceLock<Box<[AtomicU64]>>,
}

impl PrefixIndex {
    /// How many leading `blocks` are probably cached (0 when the index is
    /// empty: no allocation is made by looking).
    pub fn matched(&self, blocks: &[u64]) -> usize {
        let Some(slots) = self.slots.get() else {
            return 0;
        };
        let n = slots.len() as u64;
        blocks
            .iter()
            .take_while(|&&h| slots[(h % n) as usize].load(Ordering::Relaxed) == h)
            .count()
    }

    /// Notes that `blocks` were sent to this replica; the index holds
    /// `capacity` blocks (fixed by the first call).
    pub fn record(&self, blocks: &[u64], capacity: usize) {
        if blocks.is_empty() {
            return;
        }
        let slots = self.slots.get_or_init(|| {
            (0..capacity.max(1))
                .map(|_| AtomicU64::new(0))
                .collect::<Vec<_>>()
                .into_boxed_slice()
        });
        let n = slots.len() as u64;
        for &h in blocks {
            slots[(h % n) as usize].store(h, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_chained_so_a_shared_prefix_shares_blocks() {
        let a = prefix_blocks(b"system prompt: be brief. user: hello there!!", 8, 64);
        let b = prefix_blocks(b"system prompt: be brief. user: bye now......", 8, 64);
        assert_eq!(a.len(), 5, "44 bytes: five full blocks of 8");
        assert_eq!(a[..3], b[..3], "the shared 24 bytes");
        assert_ne!(a[3], b[3]);
        // The same chunk after a different prefix is a different block.
        let c = prefix_blocks(b"XXXXXXXXt prompt", 8, 64);
        let d = prefix_blocks(b"YYYYYYYYt prompt", 8, 64);
        assert_ne!(c[1], d[1]);
        assert_eq!(prefix_blocks(b"abc", 8, 64), Vec::<u64>::new());
        assert_eq!(prefix_blocks(&[0; 100], 8, 3).len(), 3, "bounded");
    }

    #[test]
    fn the_index_matches_leading_blocks_and_forgets_when_full() {
        let idx = PrefixIndex::default();
        let blocks = prefix_blocks(&[7u8; 64], 8, 64);
        assert_eq!(idx.matched(&blocks), 0);
        idx.record(&blocks[..5], 1024);
        assert_eq!(idx.matched(&blocks), 5, "the first five, then a miss");
        // A tiny index: newer blocks evict older ones sharing a slot.
        let small = PrefixIndex::default();
        small.record(&blocks, 1);
        assert_eq!(small.matched(&blocks), 0, "only the last block survives");
        assert_eq!(small.matched(&blocks[7..]), 1);
    }
}
