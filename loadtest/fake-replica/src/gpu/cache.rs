//! A bounded prefix cache of chained block hashes with true LRU eviction.

use std::collections::{BTreeMap, HashMap};

/// Block hash → last use, and last use → block hash, so the least recently
/// used block is the first entry of `by_age` (O(log n) per operation).
pub(crate) struct PrefixCache {
    capacity: usize,
    tick: u64,
    age: HashMap<u64, u64>,
    by_age: BTreeMap<u64, u64>,
}

impl PrefixCache {
    /// An empty cache holding at most `capacity` blocks.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            age: HashMap::with_capacity(capacity.min(1 << 20)),
            by_age: BTreeMap::new(),
        }
    }

    /// Blocks held.
    pub(crate) fn len(&self) -> usize {
        self.age.len()
    }

    /// Capacity in blocks.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many leading blocks of `blocks` are cached (a lookup does not
    /// refresh them; [`Self::insert`] does).
    pub(crate) fn cached_prefix(&self, blocks: &[u64]) -> usize {
        blocks
            .iter()
            .take_while(|h| self.age.contains_key(h))
            .count()
    }

    /// Inserts or refreshes every block, from the last to the first, so a
    /// prompt's head ends up the most recent and its tail is evicted first
    /// (vLLM frees a sequence's blocks in reverse order for that reason).
    /// Evicts the least recently used blocks beyond capacity.
    pub(crate) fn insert(&mut self, blocks: &[u64]) {
        if self.capacity == 0 {
            return;
        }
        for &h in blocks.iter().rev() {
            self.tick += 1;
            if let Some(old) = self.age.insert(h, self.tick) {
                self.by_age.remove(&old);
            }
            self.by_age.insert(self.tick, h);
        }
        while self.age.len() > self.capacity {
            let Some((_, h)) = self.by_age.pop_first() else {
                break;
            };
            self.age.remove(&h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut c = PrefixCache::new(3);
        c.insert(&[1]);
        c.insert(&[2]);
        c.insert(&[3]);
        c.insert(&[1]); // refresh: 2 is now the oldest
        c.insert(&[4]);
        assert_eq!(c.len(), 3);
        assert_eq!(c.cached_prefix(&[2]), 0, "2 evicted");
        for h in [1, 3, 4] {
            assert_eq!(c.cached_prefix(&[h]), 1, "{h} kept");
        }
    }

    #[test]
    fn cached_prefix_counts_leading_blocks_only() {
        let mut c = PrefixCache::new(10);
        c.insert(&[10, 11, 12]);
        assert_eq!(c.cached_prefix(&[10, 11, 12, 13]), 3);
        assert_eq!(c.cached_prefix(&[10, 99, 12]), 1, "a gap ends the prefix");
        assert_eq!(
            c.cached_prefix(&[99, 11]),
            0,
            "a miss at block 0 is no prefix"
        );
    }

    #[test]
    fn a_prompt_tail_goes_before_its_head() {
        let mut c = PrefixCache::new(3);
        c.insert(&[1, 2, 3]);
        c.insert(&[7]);
        assert_eq!(c.cached_prefix(&[1, 2, 3]), 2, "block 3 (the tail) evicted");
        c.insert(&[8, 9]);
        assert_eq!(c.cached_prefix(&[1, 2]), 0);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut c = PrefixCache::new(0);
        c.insert(&[1, 2]);
        assert_eq!(c.len(), 0);
        assert_eq!(c.cached_prefix(&[1]), 0);
    }
}
