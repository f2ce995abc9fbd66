//! A credential kept in a file that something else rotates (an Entra ID
//! token refresher, a mounted Kubernetes secret).
//!
//! The file is re-read when its modification time or size changes, checked
//! at most once a second, so a rotation is picked up within a second without
//! a reload and without a `stat` per request. Its content is read with
//! config validation's rule ([`header_value_from_file_contents`]): one
//! trailing line break is dropped, anything else must be a header value.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use http::header::{self, HeaderName, HeaderValue};
use switchyard_config::secret::header_value_from_file_contents;

/// How often the file's metadata is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A header whose value comes from a file.
#[derive(Debug)]
pub struct FileCredential {
    name: HeaderName,
    bearer: bool,
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    checked: Option<Instant>,
    stamp: Option<(SystemTime, u64)>,
    value: Option<HeaderValue>,
}

impl FileCredential {
    /// `header`: the header name (`api-key`); `None`: `Authorization: Bearer`.
    pub fn new(header: Option<&str>, path: &Path) -> Self {
        let name = header
            .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .unwrap_or(header::AUTHORIZATION);
        Self {
            bearer: header.is_none(),
            name,
            path: path.to_owned(),
            state: Mutex::default(),
        }
    }

    /// The header to send now. The error names the file, never its content.
    pub fn current(&self) -> Result<(HeaderName, HeaderValue), String> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let due = st
            .checked
            .is_none_or(|t| now.duration_since(t) >= CHECK_EVERY);
        if due || st.value.is_none() {
            st.checked = Some(now);
            let meta = std::fs::metadata(&self.path)
                .map_err(|e| format!("credential file {}: {e}", self.path.display()))?;
            let stamp = (
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
            );
            if st.stamp != Some(stamp) || st.value.is_none() {
                st.value = Some(self.read()?);
                st.stamp = Some(stamp);
            }
        }
        match &st.value {
            Some(v) => Ok((self.name.clone(), v.clone())),
            None => Err(format!("credential file {} is empty", self.path.display())),
        }
    }

    fn read(&self) -> Result<HeaderValue, String> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("credential file {}: {e}", self.path.display()))?;
        // The same rule `check` applied at load: one trailing line break
        // dropped, anything else that is not a header value refused.
        let secret = header_value_from_file_contents(&text)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_file_is_read_again() {
        let path = std::env::temp_dir().join(format!("sy-cred-{}", fastrand::u64(..)));
        std::fs::write(&path, "first\n").unwrap();
        let cred = FileCredential::new(None, &path);
        assert_eq!(cred.current().unwrap().1, "Bearer first");
        std::fs::write(&path, "second-longer").unwrap();
        // Force the next look at the file (a second has not passed).
        cred.state.lock().unwrap().checked = None;
        let (name, value) = cred.current().unwrap();
        assert_eq!(name, header::AUTHORIZATION);
        assert_eq!(value, "Bearer second-longer");
        assert!(value.is_sensitive());
        std::fs::remove_file(&path).unwrap();
        cred.state.lock().unwrap().checked = None;
        let err = cred.current().unwrap_err();
        assert!(!err.contains("second"), "{err}");
    }
}
