//! `replicas[i].aws` for `protocol: bedrock` and `sagemaker`: region,
//! endpoint name and keys.

use super::Validator;
use crate::Secret;
use crate::model::AwsCredentials;
use crate::raw::RawReplica;

impl Validator {
    /// `replicas[i].aws` region and keys, shared by `bedrock` and `sagemaker`.
    pub(super) fn aws(
        &mut self,
        path: &str,
        r: &RawReplica,
        kind: &str,
        cloud_region: Option<String>,
    ) -> Option<(String, Option<AwsCredentials>)> {
        let raw = r.aws.as_ref();
        let region = raw.and_then(|a| a.region.clone()).or(cloud_region);
        let region = match region {
            Some(reg)
                if !reg.is_empty()
                    && reg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                reg
            }
            Some(reg) => {
                self.err(
                    format!("{path}.aws.region"),
                    format!("`{reg}` is not an AWS region"),
                );
                return None;
            }
            None => {
                self.err(
                    format!("{path}.aws.region"),
                    format!("required by `protocol: {kind}` (or set the cloud's `region`)"),
                );
                return None;
            }
        };
        if r.auth.is_some() {
            self.err(
                format!("{path}.auth"),
                format!(
                    "not used by `protocol: {kind}`: requests are signed with the `aws` credentials"
                ),
            );
        }
        let credentials = match raw.map(|a| (&a.access_key_id, &a.secret_access_key)) {
            None | Some((None, None)) => None,
            Some((Some(id), Some(secret))) if !id.is_empty() && !secret.is_empty() => {
                Some(AwsCredentials {
                    access_key_id: Secret::new(id.clone()),
                    secret_access_key: Secret::new(secret.clone()),
                    session_token: raw
                        .and_then(|a| a.session_token.clone())
                        .filter(|t| !t.is_empty())
                        .map(Secret::new),
                })
            }
            Some(_) => {
                self.err(
                    format!("{path}.aws"),
                    "set both `access_key_id` and `secret_access_key` (non-empty), or neither \
                     to use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
                );
                None
            }
        };
        Some((region, credentials))
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
