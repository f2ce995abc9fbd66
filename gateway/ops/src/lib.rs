//! Switchyard's operator surface: what people and their tools read and
//! drive: the admin API, Prometheus metrics, the access log and OTLP
//! traces, the cost ledger and the dashboard.
//!
//! It watches the data plane through one [`switchyard_proxy::Observer`],
//! [`GatewayObserver`], which feeds metrics, the access log, spans, the
//! cost ledger and the rollout figures; and it drives the control plane
//! through [`switchyard_control::Controller`]'s methods. Neither of those
//! crates knows this one.
//!
//! # Layout
//! - [`admin`]: the admin router (probes, `/metrics`), over
//!   [`state::Ops`]; [`admin_guard`] (tokens, roles, cross-site refusals,
//!   audit), [`admin_error`] (the one error shape); one file per resource: [`admin_replicas`]
//!   (`/admin/replicas`, `/admin/events`), [`admin_replica_actions`]
//!   (cordon, uncordon, drain one replica), [`admin_registrations`]
//!   (members registering with a lease, `/admin/discovery`), [`control_api`]
//!   (`/admin/config`, reload, weights, promote, rollback, rollouts),
//!   [`admin_costs`] (`/admin/costs`), [`admin_keys`] (`/admin/keys`: runtime API keys), [`dashboard`] (the page at `/`).
//! - [`observer`]: the data plane's observer; it feeds [`metrics`]
//!   (families, per-request [`metrics::Obs`], scrape), [`costs`] (the
//!   ledger) and the rollout figures.
//! - [`telemetry`]: log setup and OTLP trace export.
//!
//! Dependencies inside the crate point one way: `admin*` → `state` →
//! `observer` → `metrics`, `costs` → `telemetry`.

pub mod admin;
pub mod admin_costs;
pub mod admin_error;
pub mod admin_fleet;
pub mod admin_guard;
pub mod admin_keys;
pub mod admin_registrations;
pub mod admin_replica_actions;
pub mod admin_replicas;
pub mod control_api;
pub mod costs;
pub mod dashboard;
pub mod metrics;
pub mod observer;
pub mod state;
pub mod telemetry;

pub use observer::GatewayObserver;
pub use state::Ops;
