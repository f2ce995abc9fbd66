//! Errors that name the field they are about.

use std::fmt;

/// One problem with one field of the config, e.g.
/// `models[2].versions[0].weight: must be 0..=100, got 140`.
///
/// Validation collects every `FieldError` it finds instead of stopping at the
/// first, so an operator fixes a broken file in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path to the field, with `[i]` for list items (`replicas[3].url`).
    pub path: String,
    /// What is wrong, in words an operator can act on.
    pub reason: String,
}

impl FieldError {
    /// Builds an error for `path`; `reason` says what is wrong and, where it
    /// helps, what would be accepted.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Why a config could not be loaded. Every variant carries enough to find the
/// problem in the file without reading our source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The path we tried to read.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML (bad indentation, unclosed quote, ...).
    #[error("config is not valid YAML: {0}")]
    Syntax(String),
    /// The YAML is well-formed but a field has the wrong type or is unknown.
    #[error("{0}")]
    Shape(FieldError),
    /// `${VAR}` interpolation or semantic validation found problems; all of them are listed.
    #[error("{} problem(s) in config:\n{}", .0.len(), list(.0))]
    Invalid(Vec<FieldError>),
}

impl ConfigError {
    /// Every field-level problem this error carries, for callers (admin API,
    /// `switchyard check`) that show them one per line.
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            ConfigError::Io { .. } | ConfigError::Syntax(_) => {
                vec![FieldError::new("", self.to_string())]
            }
            ConfigError::Shape(e) => vec![e.clone()],
            ConfigError::Invalid(errs) => errs.clone(),
        }
    }
}

fn list(errs: &[FieldError]) -> String {
    errs.iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}
