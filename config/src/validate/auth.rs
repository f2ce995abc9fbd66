//! `replicas[i].auth`, and the rule every secret bound for a header obeys.
//!
//! Inline and `${ENV}` secrets are checked as they are
//! ([`check_header_value`]); credential files are read at load and checked
//! with the rule the gateway applies when it re-reads them
//! ([`header_value_from_file_contents`]: one trailing line break dropped).
//! Error messages name the field and the problem, never the value.

use std::path::PathBuf;

use super::{Validator, http_token};
use crate::Secret;
use crate::model::UpstreamAuth;
use crate::raw::RawAuth;
use crate::secret::{check_header_value, header_value_from_file_contents};

impl Validator<'_> {
    /// `value` as a [`Secret`] if it can be sent in a header; else the
    /// error is recorded at `path`.
    pub(super) fn header_secret(&mut self, path: &str, value: String) -> Option<Secret> {
        match check_header_value(&value) {
            Ok(()) => Some(Secret::new(value)),
            Err(why) => {
                self.err(
                    path,
                    format!("the secret {why}: it cannot be sent as a header value"),
                );
                None
            }
        }
    }

    pub(super) fn auth(&mut self, path: &str, raw: Option<RawAuth>) -> Option<UpstreamAuth> {
        let a = raw?;
        let path = format!("{path}.auth");
        if a.bearer_file.is_some() || a.value_file.is_some() {
            return self.auth_file(&path, a);
        }
        match (a.bearer, a.header, a.value) {
            (Some(b), None, None) if !b.is_empty() => self
                .header_secret(&format!("{path}.bearer"), b)
                .map(UpstreamAuth::Bearer),
            (None, Some(name), Some(value)) if !value.is_empty() => {
                let value = self.header_secret(&format!("{path}.value"), value);
                if !http_token(&name) {
                    self.err(
                        format!("{path}.header"),
                        format!("`{name}` is not a valid header name"),
                    );
                    return None;
                }
                Some(UpstreamAuth::Header {
                    name: name.to_ascii_lowercase(),
                    value: value?,
                })
            }
            _ => {
                self.err(
                    path,
                    "set either `bearer`, or `header` and `value`, all non-empty",
                );
                None
            }
        }
    }

    /// `auth.bearer_file`, or `auth.header` + `auth.value_file`. The file
    /// must exist and hold a valid header value now; the gateway re-reads
    /// it when it changes (rotation) with the same rule.
    fn auth_file(&mut self, path: &str, a: RawAuth) -> Option<UpstreamAuth> {
        let (header, field, file) = match (a.bearer, a.header, a.value, a.bearer_file, a.value_file)
        {
            (None, None, None, Some(f), None) => (None, "bearer_file", f),
            (None, Some(h), None, None, Some(f)) => {
                if !http_token(&h) {
                    self.err(
                        format!("{path}.header"),
                        format!("`{h}` is not a valid header name"),
                    );
                    return None;
                }
                (Some(h.to_ascii_lowercase()), "value_file", f)
            }
            _ => {
                self.err(
                    path,
                    "set either `bearer_file`, or `header` and `value_file`, with no inline value",
                );
                return None;
            }
        };
        let field = format!("{path}.{field}");
        if file.is_empty() {
            self.err(field, "the credential file path must not be empty");
            return None;
        }
        self.credential_file(&field, &file)?;
        Some(UpstreamAuth::File {
            header,
            path: PathBuf::from(file),
        })
    }

    /// Reads the credential `file` once, to refuse a config whose requests
    /// would go out without a credential.
    fn credential_file(&mut self, field: &str, file: &str) -> Option<()> {
        let contents = match std::fs::read_to_string(file) {
            Ok(c) => c,
            Err(e) => {
                self.err(field, format!("cannot read `{file}`: {e}"));
                return None;
            }
        };
        match header_value_from_file_contents(&contents) {
            Ok(_) => Some(()),
            Err(why) => {
                self.err(
                    field,
                    format!(
                        "the secret in `{file}` {why} (one trailing line break is allowed): \
                         it cannot be sent as a header value"
                    ),
                );
                None
            }
        }
    }
}
