//! LoRA adapters on the fake GPU: a request whose `model` is not the
//! replica's base model names an adapter, which must be resident before
//! its prefill starts. A cold adapter costs `load` (vLLM reads it from
//! host memory or disk into one of `max_lora` GPU slots); a full set of
//! slots evicts the least recently used adapter. `GET /metrics` reports the
//! set as vLLM's `vllm:lora_requests_info`.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// The LoRA side of a [`crate::GpuModel`].
#[derive(Clone, Debug, PartialEq)]
pub struct LoraModel {
    /// Adapters resident on the GPU at once (vLLM `--max-loras`).
    pub max_lora: usize,
    /// Time to load a cold adapter.
    pub load: Duration,
    /// Adapters resident from the start, least recently used first.
    pub preloaded: Vec<String>,
}

impl Default for LoraModel {
    fn default() -> Self {
        Self {
            max_lora: 2,
            load: Duration::from_millis(200),
            preloaded: Vec::new(),
        }
    }
}

/// The resident adapters and the ones being loaded.
#[derive(Debug)]
pub(crate) struct Slots {
    model: LoraModel,
    /// Resident, least recently used first.
    resident: VecDeque<String>,
    /// Being loaded, with when each load is done.
    loading: Vec<(String, Instant)>,
    /// Unix time of the last change, the gauge's value (as vLLM sets it).
    changed: f64,
}

impl Slots {
    pub(crate) fn new(model: LoraModel) -> Self {
        let mut resident: VecDeque<String> = model.preloaded.iter().cloned().collect();
        while resident.len() > model.max_lora.max(1) {
            resident.pop_front();
        }
        Self {
            model,
            resident,
            loading: Vec::new(),
            changed: unix_now(),
        }
    }

    /// A request for `adapter` at `now`: how long it waits for the adapter
    /// (zero when resident, what is left of a load under way, else a whole
    /// load, which starts now).
    pub(crate) fn acquire(&mut self, adapter: &str, now: Instant) -> Duration {
        self.settle(now);
        if let Some(k) = self.resident.iter().position(|a| a == adapter) {
            let a = self.resident.remove(k).unwrap_or_default();
            self.resident.push_back(a);
            return Duration::ZERO;
        }
        if let Some((_, done)) = self.loading.iter().find(|(a, _)| a == adapter) {
            return done.saturating_duration_since(now);
        }
        self.loading
            .push((adapter.to_owned(), now + self.model.load));
        self.changed = unix_now();
        self.model.load
    }

    /// Loads that are done become resident, evicting the least recently used.
    fn settle(&mut self, now: Instant) {
        let (done, pending): (Vec<_>, Vec<_>) =
            self.loading.drain(..).partition(|(_, at)| *at <= now);
        self.loading = pending;
        for (a, _) in done {
            while self.resident.len() >= self.model.max_lora.max(1) {
                self.resident.pop_front();
            }
            self.resident.push_back(a);
            self.changed = unix_now();
        }
    }

    /// The `vllm:lora_requests_info` sample: resident adapters as running
    /// (the set the Inference Extension reads from vLLM's newest non-empty
    /// series), loading ones as waiting.
    pub(crate) fn sample(&mut self) -> String {
        self.settle(Instant::now());
        let running: Vec<&str> = self.resident.iter().map(String::as_str).collect();
        let waiting: Vec<&str> = self.loading.iter().map(|(a, _)| a.as_str()).collect();
        format!(
            "vllm:lora_requests_info{{max_lora=\"{}\",running_lora_adapters=\"{}\",waiting_lora_adapters=\"{}\"}} {}\n",
            self.model.max_lora,
            running.join(","),
            waiting.join(","),
            self.changed
        )
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The request's `model`, if the body has one.
pub(crate) fn requested_model(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Req {
        model: Option<String>,
    }
    serde_json::from_slice::<Req>(body).ok()?.model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cold_adapter_costs_a_load_once_and_the_lru_one_is_evicted() {
        let mut s = Slots::new(LoraModel {
            max_lora: 2,
            load: Duration::from_millis(100),
            preloaded: vec!["a".into(), "b".into()],
        });
        let t0 = Instant::now();
        assert_eq!(s.acquire("a", t0), Duration::ZERO, "preloaded");
        assert_eq!(s.acquire("c", t0), Duration::from_millis(100), "cold");
        assert_eq!(
            s.acquire("c", t0 + Duration::from_millis(40)),
            Duration::from_millis(60),
            "a second request waits for the same load"
        );
        assert!(s.sample().contains("waiting_lora_adapters=\"c\""));
        let later = t0 + Duration::from_millis(150);
        assert_eq!(s.acquire("c", later), Duration::ZERO, "resident now");
        // b was least recently used (a was touched at t0): evicted.
        assert_eq!(s.acquire("a", later), Duration::ZERO);
        assert_eq!(s.acquire("b", later), Duration::from_millis(100));
        assert!(s.sample().contains("max_lora=\"2\""));
    }
}
