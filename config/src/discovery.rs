//! Replica templates: a `replicas[i]` entry with a `discovery` block is not
//! a replica but the settings every *member* it discovers gets. Members
//! come from DNS (each address a replica) or from the registration API
//! (a replica or an autoscaler registers with a lease); the control plane
//! turns each into a `Replica` with `Replica::member` (in `member.rs`), so a
//! discovered replica is validated exactly like a configured one was.
//!
//! Why templates rather than a separate section: a member differs from
//! its template only by id and address, and the template is checked by
//! the same code as any replica (URL, auth, TLS, engine, cost).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// `replicas[i].discovery`: where a template's members come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// DNS or registration.
    pub source: DiscoverySource,
    /// Most members one template may have: a runaway autoscaler or a
    /// poisoned DNS answer cannot grow the table without bound.
    pub max_members: u32,
}

/// The three sources of members.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscoverySource {
    /// Resolved on the record's TTL, bounded by `min_refresh..=max_refresh`.
    Dns {
        /// Name resolved.
        name: String,
        /// Record type.
        record: DnsRecord,
        /// Port of A/AAAA members (default: the template URL's port).
        port: Option<u16>,
        /// Nameserver asked (default: the system's `/etc/resolv.conf`).
        nameserver: Option<SocketAddr>,
        /// Shortest time between two resolutions (also the retry delay
        /// after a failure).
        min_refresh: Duration,
        /// Longest time between two resolutions, whatever the TTL says.
        max_refresh: Duration,
    },
    /// `POST /admin/registrations`: members hold a lease of at most
    /// `max_ttl`, renewed by heartbeats; an expired lease drains the member.
    Registration {
        /// Longest lease a registration may ask for.
        max_ttl: Duration,
    },
    /// A Service's EndpointSlices, listed and watched (re-listed after
    /// every watch reconnect): each ready endpoint address a member.
    Kubernetes {
        /// Namespace of the Service.
        namespace: String,
        /// Service name (label `kubernetes.io/service-name`).
        service: String,
        /// Which of the slices' ports members get.
        port: KubePort,
        /// Kubeconfig file (default: kube's inference, `$KUBECONFIG` or
        /// `~/.kube/config`, else the in-cluster service account).
        kubeconfig: Option<PathBuf>,
    },
}

/// `discovery.kubernetes.port`: an EndpointSlice port's name, or its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubePort {
    /// The slice port with this name (the Service port's name).
    Name(String),
    /// This port number (default: the template URL's port).
    Number(u16),
}

impl DiscoverySource {
    /// `dns` or `registration`.
    pub fn kind(&self) -> Membership {
        match self {
            DiscoverySource::Dns { .. } => Membership::Dns,
            DiscoverySource::Registration { .. } => Membership::Registered,
            DiscoverySource::Kubernetes { .. } => Membership::Kubernetes,
        }
    }

    /// As `/admin/discovery` names it: the DNS name,
    /// `kubernetes:NAMESPACE/SERVICE:PORT`, or `registration`.
    pub fn name(&self) -> String {
        match self {
            DiscoverySource::Dns { name, .. } => name.clone(),
            DiscoverySource::Registration { .. } => "registration".to_owned(),
            DiscoverySource::Kubernetes {
                namespace,
                service,
                port,
                ..
            } => {
                let port = match port {
                    KubePort::Name(n) => n.clone(),
                    KubePort::Number(n) => n.to_string(),
                };
                format!("kubernetes:{namespace}/{service}:{port}")
            }
        }
    }
}

/// `discovery.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsRecord {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Targets and ports (RFC 2782); each target's addresses are members.
    Srv,
}

impl DnsRecord {
    /// As written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsRecord::A => "a",
            DnsRecord::Aaaa => "aaaa",
            DnsRecord::Srv => "srv",
        }
    }
}

/// How a replica came to be in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    /// Listed in `replicas`.
    #[default]
    Config,
    /// An address a template's DNS name resolved to.
    Dns,
    /// Registered through the admin API, under a lease.
    Registered,
    /// A ready endpoint of a Kubernetes Service's EndpointSlices.
    Kubernetes,
}

impl Membership {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Membership::Config => "config",
            Membership::Dns => "dns",
            Membership::Registered => "registered",
            Membership::Kubernetes => "kubernetes",
        }
    }
}

/// `replicas[i].discovery` as the file has it.
impl Serialize for Discovery {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Raw<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            dns: Option<&'a str>,
            #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
            record: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            port: Option<u16>,
            #[serde(skip_serializing_if = "Option::is_none")]
            nameserver: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            min_refresh_ms: Option<u128>,
            #[serde(skip_serializing_if = "Option::is_none")]
            max_refresh_ms: Option<u128>,
            #[serde(skip_serializing_if = "Option::is_none")]
            registration: Option<bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            max_ttl_ms: Option<u128>,
            #[serde(skip_serializing_if = "Option::is_none")]
            kubernetes: Option<Kube<'a>>,
            max_members: u32,
        }
        #[derive(Serialize)]
        struct Kube<'a> {
            namespace: &'a str,
            service: &'a str,
            port: Port<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            kubeconfig: Option<String>,
        }
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Port<'a> {
            Name(&'a str),
            Number(u16),
        }
        let mut raw = Raw {
            dns: None,
            record: None,
            port: None,
            nameserver: None,
            min_refresh_ms: None,
            max_refresh_ms: None,
            registration: None,
            max_ttl_ms: None,
            kubernetes: None,
            max_members: self.max_members,
        };
        match &self.source {
            DiscoverySource::Dns {
                name,
                record,
                port,
                nameserver,
                min_refresh,
                max_refresh,
            } => {
                raw.dns = Some(name);
                raw.record = Some(record.as_str());
                raw.port = *port;
                raw.nameserver = nameserver.map(|n| n.to_string());
                raw.min_refresh_ms = Some(min_refresh.as_millis());
                raw.max_refresh_ms = Some(max_refresh.as_millis());
            }
            DiscoverySource::Registration { max_ttl } => {
                raw.registration = Some(true);
                raw.max_ttl_ms = Some(max_ttl.as_millis());
            }
            DiscoverySource::Kubernetes {
                namespace,
                service,
                port,
                kubeconfig,
            } => {
                raw.kubernetes = Some(Kube {
                    namespace,
                    service,
                    port: match port {
                        KubePort::Name(n) => Port::Name(n),
                        KubePort::Number(n) => Port::Number(*n),
                    },
                    kubeconfig: kubeconfig.as_ref().map(|p| p.display().to_string()),
                });
            }
        }
        raw.serialize(s)
    }
}
