//! `replicas[i].discovery.kubernetes`: a Service whose EndpointSlices
//! supply a template's members (see [`crate::discovery`]).

use std::path::PathBuf;

use super::Validator;
use crate::discovery::{DiscoverySource, KubePort};
use crate::raw::{RawKubernetes, RawPort};

/// RFC 1123 label, as Kubernetes requires of namespaces and Service names:
/// 1–63 lowercase letters, digits and `-`, starting and ending with a
/// letter or digit.
fn dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// An IANA service name, as Kubernetes requires of port names: 1–15
/// lowercase letters, digits and `-`, at least one letter, no `--`, not
/// starting or ending with `-`.
fn port_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=15).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.iter().any(u8::is_ascii_lowercase)
        && !s.contains("--")
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

impl Validator<'_> {
    pub(super) fn kubernetes(
        &mut self,
        path: &str,
        raw: RawKubernetes,
        default_port: u16,
    ) -> Option<DiscoverySource> {
        let label = |v: &mut Self, field: &str, value: Option<String>| match value {
            None => {
                v.err(format!("{path}.{field}"), "required");
                None
            }
            Some(s) if !dns_label(&s) => {
                v.err(
                    format!("{path}.{field}"),
                    format!("`{s}` is not a Kubernetes name (lowercase RFC 1123 label)"),
                );
                None
            }
            Some(s) => Some(s),
        };
        let namespace = label(self, "namespace", raw.namespace);
        let service = label(self, "service", raw.service);
        let port = match raw.port {
            None => Some(KubePort::Number(default_port)),
            Some(RawPort::Number(n)) => self
                .int(path, "port", Some(n), 1, 65_535)
                .map(|n| KubePort::Number(n as u16)),
            Some(RawPort::Name(name)) if port_name(&name) => Some(KubePort::Name(name)),
            Some(RawPort::Name(name)) => {
                self.err(
                    format!("{path}.port"),
                    format!("`{name}` is neither a port number nor a Kubernetes port name"),
                );
                None
            }
        };
        let kubeconfig = match raw.kubeconfig {
            Some(p) if p.trim().is_empty() => {
                self.err(format!("{path}.kubeconfig"), "empty path");
                None
            }
            Some(p) => Some(PathBuf::from(p)),
            None => None,
        };
        Some(DiscoverySource::Kubernetes {
            namespace: namespace?,
            service: service?,
            port: port?,
            kubeconfig,
        })
    }
}
