//! Why no replica could be chosen.

use switchyard_config::Protocol;

/// The router's answer when it cannot hand out a replica. The gateway maps
/// each variant to a status and the API's error shape; the router itself
/// knows nothing of HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No model group has this name.
    #[error("model `{model}` does not exist")]
    UnknownModel {
        /// The name the client sent.
        model: String,
    },
    /// `group@version` named a version the group does not have.
    #[error("model `{group}` has no version `{version}`")]
    UnknownVersion {
        /// The group part.
        group: String,
        /// The version part.
        version: String,
    },
    /// The group exists but none of its replicas speaks the client's API.
    #[error("model `{model}` is not served over the {} protocol", protocol.as_str())]
    WrongProtocol {
        /// The name the client sent.
        model: String,
        /// The protocol the client spoke.
        protocol: Protocol,
    },
    /// Residency (the group's, or the request's `x-switchyard-clouds`)
    /// leaves no replica. Never answered by spilling elsewhere.
    #[error("no replica of model `{model}` runs in the allowed clouds{}", if clouds.is_empty() { String::new() } else { format!(" ({clouds})") })]
    OutsideResidency {
        /// The name the client sent.
        model: String,
        /// The request's restriction, comma-separated (empty: the group's own).
        clouds: String,
    },
    /// Every eligible replica is at its `max_concurrency`.
    #[error("all replicas of model `{model}` are at capacity")]
    NoCapacity {
        /// The name the client sent.
        model: String,
    },
}

impl RouteError {
    /// Short, fixed label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            RouteError::UnknownModel { .. } => "unknown_model",
            RouteError::UnknownVersion { .. } => "unknown_version",
            RouteError::WrongProtocol { .. } => "wrong_protocol",
            RouteError::NoCapacity { .. } => "no_capacity",
            RouteError::OutsideResidency { .. } => "outside_residency",
        }
    }
}
