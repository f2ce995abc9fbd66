//! `replicas[i].auth`: inline credentials or credential files.

use std::path::PathBuf;

use super::{Validator, http_token};
use crate::Secret;
use crate::model::UpstreamAuth;
use crate::raw::RawAuth;

impl Validator {
    pub(super) fn auth(&mut self, path: &str, raw: Option<RawAuth>) -> Option<UpstreamAuth> {
        let a = raw?;
        let path = format!("{path}.auth");
        if a.bearer_file.is_some() || a.value_file.is_some() {
            return self.auth_file(&path, a);
        }
        match (a.bearer, a.header, a.value) {
            (Some(b), None, None) if !b.is_empty() => Some(UpstreamAuth::Bearer(Secret::new(b))),
            (None, Some(name), Some(value)) if !value.is_empty() => {
                if http_token(&name) {
                    Some(UpstreamAuth::Header {
                        name: name.to_ascii_lowercase(),
                        value: Secret::new(value),
                    })
                } else {
                    self.err(
                        format!("{path}.header"),
                        format!("`{name}` is not a valid header name"),
                    );
                    None
                }
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

    /// `auth.bearer_file`, or `auth.header` + `auth.value_file`.
    fn auth_file(&mut self, path: &str, a: RawAuth) -> Option<UpstreamAuth> {
        let (header, file) = match (a.bearer, a.header, a.value, a.bearer_file, a.value_file) {
            (None, None, None, Some(f), None) => (None, f),
            (None, Some(h), None, None, Some(f)) => {
                if !http_token(&h) {
                    self.err(
                        format!("{path}.header"),
                        format!("`{h}` is not a valid header name"),
                    );
                    return None;
                }
                (Some(h.to_ascii_lowercase()), f)
            }
            _ => {
                self.err(
                    path,
                    "set either `bearer_file`, or `header` and `value_file`, with no inline value",
                );
                return None;
            }
        };
        if file.is_empty() {
            self.err(path, "the credential file path must not be empty");
            return None;
        }
        Some(UpstreamAuth::File {
            header,
            path: PathBuf::from(file),
        })
    }
}
