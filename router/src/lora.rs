//! Which LoRA adapters a replica's engine last reported, scraped with its
//! load figures (vLLM's `vllm:lora_requests_info`: `running_lora_adapters`,
//! `waiting_lora_adapters`, `max_lora`), and how well a replica suits a
//! request for one adapter.
//!
//! The tiers follow the Gateway API Inference Extension's
//! `lora-affinity-scorer` (active 1.0, free slot 0.8, waiting 0.6, full 0),
//! reordered as routing here wants them: an adapter already running beats
//! one being loaded, which beats a replica that would have to load it into
//! a free slot, which beats one that must evict another adapter first.
//! Figures older than the group's `engine_stale_ms` say nothing.

use std::sync::{Arc, RwLock};

/// One scrape's adapter figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adapters {
    /// Adapters with requests in the running batch (loaded on the GPU).
    pub running: Vec<String>,
    /// Adapters with requests waiting (to be loaded).
    pub waiting: Vec<String>,
    /// Adapters the engine can hold on the GPU at once (`--max-loras`).
    pub max: u32,
}

impl Adapters {
    /// How well this replica suits a request for `adapter`, 0..=1.
    pub fn tier(&self, adapter: &str) -> f64 {
        let has = |list: &[String]| list.iter().any(|a| a == adapter);
        if has(&self.running) {
            1.0
        } else if has(&self.waiting) {
            0.8
        } else if self.running.len() + self.waiting.len() < self.max as usize {
            0.6
        } else {
            0.0
        }
    }
}

/// The latest adapter figures of one replica. A lock, not atomics: a set of
/// names; written once per scrape, read only for requests naming an adapter.
#[derive(Debug, Default)]
pub struct LoraLoad(RwLock<Option<(Arc<Adapters>, u64)>>);

impl LoraLoad {
    /// Stores a scrape taken at `now` ([`crate::clock`] scale); `None`: the
    /// engine reported no adapters (LoRA off), which clears the old ones.
    pub fn update(&self, adapters: Option<Adapters>, now: u64) {
        let value = adapters.map(|a| (Arc::new(a), now.max(1)));
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = value;
    }

    /// The figures as last scraped and when, fresh or not (for operators).
    pub fn last(&self) -> Option<(Arc<Adapters>, u64)> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The figures routing uses at `now`: `None` when missing or older
    /// than `stale_ms`.
    pub fn view(&self, now: u64, stale_ms: u64) -> Option<Arc<Adapters>> {
        let (a, at) = self.last()?;
        (now.saturating_sub(at) <= stale_ms).then_some(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn running_beats_waiting_beats_a_free_slot_beats_a_full_replica() {
        let a = Adapters {
            running: names(&["sql"]),
            waiting: names(&["chat"]),
            max: 3,
        };
        assert_eq!(a.tier("sql"), 1.0);
        assert_eq!(a.tier("chat"), 0.8);
        assert_eq!(a.tier("code"), 0.6, "two of three slots used");
        let full = Adapters { max: 2, ..a };
        assert_eq!(full.tier("code"), 0.0, "would have to evict");
    }

    #[test]
    fn stale_or_cleared_figures_are_no_figures() {
        let l = LoraLoad::default();
        assert!(l.view(10, 2_000).is_none(), "never scraped");
        l.update(Some(Adapters::default()), 1_000);
        assert!(l.view(3_000, 2_000).is_some());
        assert!(l.view(3_001, 2_000).is_none(), "older than engine_stale_ms");
        l.update(None, 3_100);
        assert!(l.view(3_100, 2_000).is_none(), "LoRA turned off");
    }
}
