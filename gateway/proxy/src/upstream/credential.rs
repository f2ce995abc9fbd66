//! Credentials that change while the gateway runs, refreshed off the
//! request path.
//!
//! A [`CredentialSource`] answers [`CredentialSource::current`] with a load
//! (no I/O, no lock a refresh holds), and is brought up to date by
//! [`CredentialSource::refresh`], which the control plane's refresher
//! (`switchyard_control::credentials`) awaits every
//! [`REFRESH_EVERY`]. The one source today is [`FileCredential`]: a file
//! something else rotates (an Entra ID token refresher, a mounted
//! Kubernetes secret). Token sources that need a network call (Entra ID,
//! IRSA / web identity, GCP service accounts) implement the same trait:
//! their refresh is async.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use http::header::{self, HeaderName, HeaderValue};
use switchyard_config::secret::header_value_from_file_contents;

/// How often the refresher brings every source up to date: a rotated file
/// is in use within this.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);

/// A credential header whose value can change while the gateway runs.
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The header to send now. The error names where the credential comes
    /// from, never its value.
    fn current(&self) -> Result<(HeaderName, HeaderValue), String>;

    /// Fetches the credential again when it may have changed.
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// A header whose value comes from a file, read with config validation's
/// rule ([`header_value_from_file_contents`]): one trailing line break is
/// dropped, anything else must be a header value. The file is read again
/// when its modification time or size changes.
pub struct FileCredential {
    name: HeaderName,
    bearer: bool,
    path: PathBuf,
    value: ArcSwap<Result<HeaderValue, String>>,
    /// What the last refresh saw of the file; only refreshes touch it.
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl fmt::Debug for FileCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCredential")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileCredential {
    /// `header`: the header name (`api-key`); `None`: `Authorization: Bearer`.
    /// Reads the file once (generations are prepared off the request path);
    /// later reads are the refresher's.
    pub fn new(header: Option<&str>, path: &Path) -> Arc<Self> {
        let name = header
            .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .unwrap_or(header::AUTHORIZATION);
        let cred = Self {
            bearer: header.is_none(),
            name,
            path: path.to_owned(),
            value: ArcSwap::from_pointee(Err(String::new())),
            stamp: Mutex::new(None),
        };
        let first = std::fs::read_to_string(path)
            .map_err(|e| cred.io_error(&e))
            .and_then(|text| cred.parse(&text));
        cred.value.store(Arc::new(first));
        Arc::new(cred)
    }

    fn io_error(&self, e: &std::io::Error) -> String {
        format!("credential file {}: {e}", self.path.display())
    }

    fn parse(&self, text: &str) -> Result<HeaderValue, String> {
        // The same rule `check` applied at load: one trailing line break
        // dropped, anything else that is not a header value refused.
        let secret = header_value_from_file_contents(text)
            .map_err(|why| format!("credential file {}: the secret {why}", self.path.display()))?;
        let value = if self.bearer {
            format!("Bearer {secret}")
        } else {
            secret.to_owned()
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            format!(
                "credential file {} does not hold a valid header value",
                self.path.display()
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    async fn reread(&self) {
        let meta = match tokio::fs::metadata(&self.path).await {
            Ok(m) => m,
            Err(e) => {
                self.value.store(Arc::new(Err(self.io_error(&e))));
                *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = None;
                return;
            }
        };
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let seen = *self.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if seen == Some(stamp) && self.value.load().is_ok() {
            return;
        }
        let read = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| self.io_error(&e))
            .and_then(|text| self.parse(&text));
        self.value.store(Arc::new(read));
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = Some(stamp);
    }
}

impl CredentialSource for FileCredential {
    fn current(&self) -> Result<(HeaderName, HeaderValue), String> {
        match &**self.value.load() {
            Ok(v) => Ok((self.name.clone(), v.clone())),
            Err(e) => Err(e.clone()),
        }
    }

    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.reread())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rotated_file_is_in_use_after_a_refresh() {
        let path = std::env::temp_dir().join(format!("sy-cred-{}", fastrand::u64(..)));
        std::fs::write(&path, "first\n").unwrap();
        let cred = FileCredential::new(None, &path);
        assert_eq!(cred.current().unwrap().1, "Bearer first");
        std::fs::write(&path, "second-longer").unwrap();
        assert_eq!(
            cred.current().unwrap().1,
            "Bearer first",
            "the request path does no I/O: the change waits for a refresh"
        );
        cred.refresh().await;
        let (name, value) = cred.current().unwrap();
        assert_eq!(name, header::AUTHORIZATION);
        assert_eq!(value, "Bearer second-longer");
        assert!(value.is_sensitive());
        std::fs::remove_file(&path).unwrap();
        cred.refresh().await;
        let err = cred.current().unwrap_err();
        assert!(
            err.contains("credential file") && !err.contains("second"),
            "{err}"
        );
    }
}
