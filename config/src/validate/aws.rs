//! `replicas[i].aws` for `protocol: bedrock` and `sagemaker`: region,
//! endpoint name, and credentials, resolved here.
//!
//! Keys come from the file (`aws.access_key_id` + `aws.secret_access_key`,
//! with an optional `aws.session_token`) or, when the file has neither,
//! from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`
//! looked up through the loader's `env` function, at load. A replica whose
//! keys cannot be produced fails validation at `replicas[i].aws`: `check`
//! refuses it and a reload keeps the previous config.

use super::Validator;
use crate::Secret;
use crate::model::AwsCredentials;
use crate::raw::{RawAws, RawReplica};
use crate::secret::check_header_value;

/// The variables of the AWS SDKs' environment provider, in that order:
/// access key id, secret access key, session token.
const ENV_VARS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

impl Validator<'_> {
    /// `replicas[i].aws` region and keys, shared by `bedrock` and `sagemaker`.
    pub(super) fn aws(
        &mut self,
        path: &str,
        r: &RawReplica,
        kind: &str,
        cloud_region: Option<String>,
    ) -> Option<(String, AwsCredentials)> {
        let raw = r.aws.as_ref();
        let region = self.aws_region(path, raw, kind, cloud_region);
        if r.auth.is_some() {
            self.err(
                format!("{path}.auth"),
                format!(
                    "not used by `protocol: {kind}`: requests are signed with the `aws` credentials"
                ),
            );
        }
        let credentials = self.aws_credentials(path, raw, kind);
        Some((region?, credentials?))
    }

    fn aws_region(
        &mut self,
        path: &str,
        raw: Option<&RawAws>,
        kind: &str,
        cloud_region: Option<String>,
    ) -> Option<String> {
        match raw.and_then(|a| a.region.clone()).or(cloud_region) {
            Some(reg)
                if !reg.is_empty()
                    && reg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Some(reg)
            }
            Some(reg) => {
                self.err(
                    format!("{path}.aws.region"),
                    format!("`{reg}` is not an AWS region"),
                );
                None
            }
            None => {
                self.err(
                    format!("{path}.aws.region"),
                    format!("required by `protocol: {kind}` (or set the cloud's `region`)"),
                );
                None
            }
        }
    }

    /// The keys in the file, else those of the environment. An empty
    /// `session_token` counts as absent (`${VAR}` of an optional token).
    fn aws_credentials(
        &mut self,
        path: &str,
        raw: Option<&RawAws>,
        kind: &str,
    ) -> Option<AwsCredentials> {
        let field = |f: &str| format!("{path}.aws.{f}");
        let (id, secret, token) = raw.map_or((None, None, None), |a| {
            (
                a.access_key_id.clone(),
                a.secret_access_key.clone(),
                a.session_token.clone().filter(|t| !t.is_empty()),
            )
        });
        match (id, secret) {
            (Some(id), Some(secret)) => {
                let id = self.header_secret(&field("access_key_id"), id);
                let secret = self.header_secret(&field("secret_access_key"), secret);
                let token = match token {
                    Some(t) => Some(self.header_secret(&field("session_token"), t)?),
                    None => None,
                };
                Some(AwsCredentials {
                    access_key_id: id?,
                    secret_access_key: secret?,
                    session_token: token,
                })
            }
            (None, None) if token.is_some() => {
                self.err(
                    field("session_token"),
                    "given without `access_key_id` and `secret_access_key`: set all of them, \
                     or none to use the AWS_* environment variables",
                );
                None
            }
            (None, None) => self.aws_env_credentials(path, kind),
            _ => {
                self.err(
                    format!("{path}.aws"),
                    "set both `access_key_id` and `secret_access_key` (non-empty), or neither \
                     to use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
                );
                None
            }
        }
    }

    /// `AWS_*` through the loader's `env`, checked like inline keys; the
    /// error is at `replicas[i].aws` and names the variables, not values.
    fn aws_env_credentials(&mut self, path: &str, kind: &str) -> Option<AwsCredentials> {
        let [id, secret, token] = ENV_VARS.map(|k| (self.env)(k).filter(|v| !v.is_empty()));
        let missing: Vec<&str> = [&id, &secret]
            .into_iter()
            .zip(ENV_VARS)
            .filter_map(|(v, k)| v.is_none().then_some(k))
            .collect();
        if !missing.is_empty() {
            self.err(
                format!("{path}.aws"),
                format!(
                    "no AWS credentials for `protocol: {kind}`: set `access_key_id` and \
                     `secret_access_key` here, or {} in the gateway's environment \
                     (missing: {})",
                    ENV_VARS[..2].join(" and "),
                    missing.join(", ")
                ),
            );
            return None;
        }
        let mut checked = |var: &str, value: Option<String>| {
            let value = value?;
            match check_header_value(&value) {
                Ok(()) => Some(Secret::new(value)),
                Err(why) => {
                    self.err(
                        format!("{path}.aws"),
                        format!("{var} (used because `aws` has no keys) {why}"),
                    );
                    None
                }
            }
        };
        let access_key_id = checked(ENV_VARS[0], id);
        let secret_access_key = checked(ENV_VARS[1], secret);
        let session_token = match token {
            Some(t) => Some(checked(ENV_VARS[2], Some(t))?),
            None => None,
        };
        Some(AwsCredentials {
            access_key_id: access_key_id?,
            secret_access_key: secret_access_key?,
            session_token,
        })
    }

    /// `replicas[i].aws.endpoint_name`, required by `sagemaker` only.
    pub(super) fn endpoint_name(
        &mut self,
        path: &str,
        r: &RawReplica,
        kind: &str,
    ) -> Option<String> {
        let name = r.aws.as_ref().and_then(|a| a.endpoint_name.clone());
        match (kind, name) {
            ("sagemaker", Some(n)) => {
                let before = self.errors.len();
                self.name(&format!("{path}.aws.endpoint_name"), &n);
                (self.errors.len() == before).then_some(n)
            }
            ("sagemaker", None) => {
                self.err(
                    format!("{path}.aws.endpoint_name"),
                    "required by `protocol: sagemaker`",
                );
                None
            }
            (_, Some(_)) => {
                self.err(
                    format!("{path}.aws.endpoint_name"),
                    "only meaningful with `protocol: sagemaker`",
                );
                None
            }
            (_, None) => None,
        }
    }
}
