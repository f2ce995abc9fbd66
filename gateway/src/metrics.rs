//! Prometheus metrics (`GET /metrics` on the admin listener).
//!
//! Placeholder anchor: filled in by the observability work (#7).

use crate::state::Gateway;

/// The gateway's metric families.
#[derive(Debug, Default)]
pub struct Metrics {}

/// Renders every family in the Prometheus text format.
pub fn render(_gw: &Gateway) -> String {
    String::new()
}
