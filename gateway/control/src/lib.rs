//! Switchyard's control plane: everything that changes what the data plane
//! serves, and nothing on the request path.
//!
//! One [`Controller`] publishes generations into the [`Proxy`]: every
//! change (file, SIGHUP, admin API, rollout step) goes through
//! `Controller::publish` (in [`reload`]) under one lock, fallible prepare first,
//! then one infallible swap. It reads the data plane's live stats (probes,
//! ejection events) but the data plane never calls it.
//!
//! # Layout
//! - [`reload`]: the [`Controller`] and its state (base config, weight
//!   overrides, stable versions, history), publish, drain of removed
//!   replicas; [`reload::Source`]: where a config is read again from.
//! - [`rollout`]: automatic canary rollouts: figures (fed by an observer)
//!   and a pure `decide`; [`driver`]: the loop that applies its actions.
//! - [`watch`]: triggers: the config file changing, SIGHUP.
//! - [`credentials`]: the refresher of rotating upstream credentials;
//!   [`engine`]: engine-signal scraping (queue depth, KV-cache use);
//!   [`jwks`]: the fetcher of JWT issuers' signing keys.
//! - [`probe`]: active health checks; [`health_events`]: ejections and
//!   recoveries into the feed.
//! - [`events`]: the bounded event feed operators read; [`cordons`]: the
//!   operator's cordons in a file next to the config, across restarts.
//! - [`members`], [`lease`]: discovered members (DNS answers, registration
//!   leases), pure; `reload/discovered.rs` publishes their changes and
//!   [`discovery`] runs the resolver and the lease sweeper.
//! - [`keys`]: API keys created at run time (records, state file), published
//!   into the data plane's runtime key index.

pub mod cordons;
pub mod credentials;
pub mod discovery;
pub mod driver;
pub mod engine;
pub mod events;
pub mod health_events;
pub mod jwks;
pub mod keys;
pub mod lease;
pub mod members;
pub mod probe;
pub mod reload;
pub mod rollout;
pub mod watch;

pub use reload::Controller;
