//! Where a config comes from, so that SIGHUP, file changes and
//! `POST /admin/reload` can read it again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchyard_config::{Config, ConfigError};

use super::ReloadError;

/// Where the config comes from, so it can be read again.
#[derive(Clone)]
pub struct Source {
    /// The YAML file, if the config lives in one.
    pub path: Option<PathBuf>,
    /// Embedded text (the demo), used when there is no file.
    text: Option<&'static str>,
    /// `${VAR}` lookup, also used for YAML posted to the admin API.
    env: Env,
}

/// A `${VAR}` lookup shared by every reload from one source.
type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl Source {
    /// A config file, interpolated from the process environment.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            text: None,
            env: Arc::new(|k| std::env::var(k).ok()),
        }
    }

    /// Nothing to read again, variables from the process environment: the
    /// fleet's source (the document comes from etcd, `${VAR}`s from each
    /// instance's own environment).
    pub fn environment() -> Self {
        Self {
            path: None,
            text: None,
            env: Arc::new(|k| std::env::var(k).ok()),
        }
    }

    /// Embedded text with its own variables (the demo).
    pub fn embedded(text: &'static str, env: HashMap<String, String>) -> Self {
        Self {
            path: None,
            text: Some(text),
            env: Arc::new(move |k| env.get(k).cloned()),
        }
    }

    /// Reads and validates the source again.
    pub fn load(&self) -> Result<Config, ReloadError> {
        match (&self.path, self.text) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                self.parse(&text)
            }
            (None, Some(text)) => self.parse(text),
            (None, None) => Err(ReloadError::NoSource),
        }
    }

    /// Validates YAML text with this source's variables.
    pub fn parse(&self, text: &str) -> Result<Config, ReloadError> {
        Ok(switchyard_config::load_str(text, &|k| (self.env)(k))?)
    }

    /// The file being watched, if any.
    pub fn watched(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("path", &self.path).finish()
    }
}
