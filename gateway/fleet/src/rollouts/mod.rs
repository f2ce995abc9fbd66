//! Canary rollouts run by one leader for the whole fleet.
//!
//! - [`figures`]: each instance's cumulative counts per group and version,
//!   published lease-bound under `P/figures/<instance_id>` ([`publish`]).
//! - [`record`]: the rollout record (`P/control/rollouts/<group>`) and the
//!   group's weights (`P/control/weights/<group>`), as JSON.
//! - [`plan`]: the pure decision, one group at a time.
//! - [`store`] and [`driver`]: the leader's fenced reads and writes.
//! - [`start`]: both tasks, as a gateway in etcd mode runs them.

pub mod driver;
pub mod figures;
pub mod plan;
pub mod publish;
pub mod record;
pub mod start;
pub mod store;

pub use start::start;

/// What can go wrong talking to etcd about rollouts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// etcd refused or could not be reached.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// A value could not be encoded.
    #[error("encoding a value: {0}")]
    Encode(#[from] serde_json::Error),
    /// The leader's lease ran out or could not be kept alive.
    #[error("lease lost: {0}")]
    LeaseLost(String),
}
