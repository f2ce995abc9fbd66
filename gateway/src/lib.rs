//! Switchyard's gateway: the HTTP data plane (OpenAI-compatible `/v1/*` and
//! KServe v2 `/v2/*`), the admin API, and the `switchyard` binary.
//!
//! # Layout
//! - [`proxy`]: the request path, top to bottom in `proxy/mod.rs`.
//! - [`error`]: the data plane's error enum and its one HTTP edge.
//! - [`state`]: the atomically swapped snapshot (config + replica table +
//!   upstream clients) and what outlives it (live stats, readiness).
//! - [`upstream`]: the pooled client and per-replica address/credentials.
//! - [`server`]: listeners, connection limits and graceful shutdown.
//! - [`admin`]: probes, `/admin/replicas`, `/admin/config`.
//! - [`admission`]: per-group bounded wait queues with priorities.
//! - [`demo`]: the self-contained three-cloud demo and its synthetic traffic.
//! - [`dashboard`]: the live page at `/` on the admin listener.
//! - [`signal`]: which process signals mean "stop".
//! - [`metrics`]: Prometheus families and each request's record (access
//!   log, spans); [`telemetry`]: log setup and OTLP trace export.
//!
//! Which replica serves a request is decided by `switchyard-router`; this
//! crate owns talking HTTP on both sides.

pub mod admin;
pub mod admission;
pub mod control_api;
pub mod costs;
pub mod dashboard;
pub mod demo;
pub mod error;
pub mod events;
pub mod health_events;
pub mod metrics;
pub mod probe;
pub mod proxy;
pub mod reload;
pub mod rollout;
pub mod server;
pub mod signal;
pub mod state;
pub mod telemetry;
pub mod upstream;
pub mod watch;

pub use server::{Running, start, start_on};
pub use state::Gateway;
