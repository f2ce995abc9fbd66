//! Live counters and the indicatif progress bar on stderr (hidden when
//! stderr is not a terminal or progress is off), refreshed four times a second.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::Instant;

use super::LoadSpec;

/// Counters every request bumps, warm-up included, for the bar only.
#[derive(Default)]
pub(crate) struct Live {
    pub(crate) sent: AtomicU64,
    pub(crate) done: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl Live {
    /// Counts one finished request.
    pub(crate) fn finish(&self, ok: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The bar and the task that refreshes it; stopped on `finish` or drop.
pub(crate) struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts the bar, sized in seconds of the whole run (warm-up included).
    pub(crate) fn start(spec: &LoadSpec, start: Instant, live: Arc<Live>) -> Self {
        let total = spec.warmup + spec.duration;
        let bar = if spec.progress && std::io::stderr().is_terminal() {
            ProgressBar::new(total.as_millis() as u64)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        let warmup_end = start + spec.warmup;
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut last = (Instant::now(), 0u64);
            loop {
                tick.tick().await;
                let now = Instant::now();
                let done = live.done.load(Ordering::Relaxed);
                let in_flight = live.sent.load(Ordering::Relaxed).saturating_sub(done);
                let rate = (done - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-3);
                last = (now, done);
                let phase = if now < warmup_end { "warm-up " } else { "" };
                b.set_position((now - start).as_millis() as u64);
                b.set_message(format!(
                    "{phase}{done} done, {} failed, {rate:.0} req/s, {in_flight} in flight",
                    live.failed.load(Ordering::Relaxed)
                ));
            }
        });
        Self { bar, task }
    }

    /// Stops refreshing and clears the bar.
    pub(crate) fn finish(self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}
