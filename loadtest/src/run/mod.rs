//! `switchyard-loadtest run`: a load generator that understands the APIs it
//! drives. It paces requests in a closed loop (fixed concurrency) or an open
//! loop (fixed arrival rate, latency from the intended send time), parses
//! SSE streams to judge each one, and reports HDR percentiles, a per-second
//! timeline and who (replica, version, config generation) served what.
//!
//! # Layout
//! - `spec`: [`LoadSpec`] and the `--mix` / `--prompt-mix` parsers.
//! - `conversation`: the shared-prefix multi-turn workload ([`SharedPrefix`]).
//! - `driver`: [`run_load`], the closed and open pacing loops.
//! - `exchange`: one request, read to the end and judged.
//! - `sse`: the incremental SSE parser and stream verdict.
//! - `engine`: `--engine-metrics`, the replicas' prefix-cache counters.
//! - `verdict`: [`Verdict`] and its stable labels.
//! - `recorder` / `report` / `summary`: the tally, [`LoadReport`], its text.
//! - `progress`: the indicatif bar.
//! - `cli`: the `run` flags; `scenario_glue`: what the scenario runner calls.
//!
//! The plot of a report lives in `crate::plot`.

mod cli;
mod conversation;
mod driver;
mod engine;
mod exchange;
mod progress;
mod recorder;
mod report;
mod scenario_glue;
mod spec;
mod sse;
mod summary;
mod verdict;

#[cfg(test)]
mod tests;

pub use cli::{RunArgs, run};
pub use conversation::SharedPrefix;
pub use driver::run_load;
pub use engine::PrefixCacheStats;
pub use report::{LoadReport, Second};
pub use scenario_glue::spec_from_scenario;
pub use spec::{Endpoint, LoadSpec, Mode, PromptSizes, Workload};
pub use verdict::Verdict;

/// The plot lives beside `run`; re-exported so callers need one path.
pub use crate::plot::plot;

// Library surface for in-process callers that the binary itself may not name.
#[allow(unused_imports, reason = "API for the scenario runner and tests")]
pub use {
    recorder::Histograms,
    report::{MixItem, Percentiles, TokenStats},
    spec::{parse_mix, parse_prompt_mix},
};
