//! `replicas[i].discovery`: a template's source of members (see
//! [`crate::discovery`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use url::Url;

use super::Validator;
use crate::defaults as d;
use crate::discovery::{Discovery, DiscoverySource, DnsRecord};
use crate::raw::RawDiscovery;

impl Validator<'_> {
    pub(super) fn discovery(
        &mut self,
        replica: &str,
        raw: RawDiscovery,
        url: Option<&Url>,
        cloud_api: bool,
    ) -> Option<Discovery> {
        let path = format!("{replica}.discovery");
        if cloud_api {
            self.err(
                &path,
                "a managed cloud's endpoint is not discovered; templates speak openai or kserve_v2",
            );
        }
        if url.is_some_and(|u| u.path() != "/" && u.path().ends_with('/')) {
            self.err(
                format!("{replica}.url"),
                "a template's URL path must not end with `/`",
            );
        }
        let max_members = self
            .int(&path, "max_members", raw.max_members, 1, 10_000)
            .map_or(d::DISCOVERY_MAX_MEMBERS, |n| n as u32);
        let registration = raw.registration.unwrap_or(false);
        if let Some(kube) = raw.kubernetes {
            if raw.dns.is_some() || registration {
                self.err(
                    &path,
                    "give one of `dns`, `registration: true` or `kubernetes`",
                );
                return None;
            }
            let dns_only = [
                ("type", raw.record.is_some()),
                ("port", raw.port.is_some()),
                ("nameserver", raw.nameserver.is_some()),
                ("min_refresh_ms", raw.min_refresh_ms.is_some()),
                ("max_refresh_ms", raw.max_refresh_ms.is_some()),
                ("max_ttl_ms", raw.max_ttl_ms.is_some()),
            ];
            for (field, set) in dns_only {
                if set {
                    self.err(format!("{path}.{field}"), "not for `kubernetes` discovery");
                }
            }
            let default_port = url.and_then(|u| u.port_or_known_default()).unwrap_or(80);
            let source = self.kubernetes(&format!("{path}.kubernetes"), kube, default_port)?;
            return Some(Discovery {
                source,
                max_members,
            });
        }
        let source = match (raw.dns, registration) {
            (Some(_), true) => {
                self.err(&path, "give either `dns` or `registration: true`, not both");
                return None;
            }
            (None, false) => {
                self.err(
                    &path,
                    "give `dns: NAME`, `registration: true` or `kubernetes: {...}`",
                );
                return None;
            }
            (Some(name), false) => {
                for (field, set) in [("max_ttl_ms", raw.max_ttl_ms.is_some())] {
                    if set {
                        self.err(format!("{path}.{field}"), "only for `registration: true`");
                    }
                }
                self.dns(
                    &path,
                    name,
                    raw.record,
                    raw.port,
                    raw.nameserver,
                    raw.min_refresh_ms,
                    raw.max_refresh_ms,
                )?
            }
            (None, true) => {
                let dns_only = [
                    ("type", raw.record.is_some()),
                    ("port", raw.port.is_some()),
                    ("nameserver", raw.nameserver.is_some()),
                    ("min_refresh_ms", raw.min_refresh_ms.is_some()),
                    ("max_refresh_ms", raw.max_refresh_ms.is_some()),
                ];
                for (field, set) in dns_only {
                    if set {
                        self.err(format!("{path}.{field}"), "only for `dns` discovery");
                    }
                }
                let max_ttl = self
                    .ms(&path, "max_ttl_ms", raw.max_ttl_ms)
                    .unwrap_or(Duration::from_millis(d::REGISTRATION_MAX_TTL_MS));
                DiscoverySource::Registration { max_ttl }
            }
        };
        Some(Discovery {
            source,
            max_members,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn dns(
        &mut self,
        path: &str,
        name: String,
        record: Option<String>,
        port: Option<i64>,
        nameserver: Option<String>,
        min_refresh_ms: Option<i64>,
        max_refresh_ms: Option<i64>,
    ) -> Option<DiscoverySource> {
        let bare = name.strip_suffix('.').unwrap_or(&name);
        let valid_name = !bare.is_empty()
            && bare.len() <= 253
            && bare.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid_name {
            self.err(format!("{path}.dns"), format!("`{name}` is not a DNS name"));
        }
        let record = match record.as_deref() {
            None | Some("a") => DnsRecord::A,
            Some("aaaa") => DnsRecord::Aaaa,
            Some("srv") => DnsRecord::Srv,
            Some(other) => {
                self.err(
                    format!("{path}.type"),
                    format!("unknown record type `{other}` (expected a, aaaa or srv)"),
                );
                DnsRecord::A
            }
        };
        let port = self.int(path, "port", port, 1, 65_535).map(|p| p as u16);
        if port.is_some() && record == DnsRecord::Srv {
            self.err(
                format!("{path}.port"),
                "SRV records carry the port; drop `port`",
            );
        }
        let nameserver = nameserver.and_then(|text| {
            let parsed = text
                .parse::<SocketAddr>()
                .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)));
            match parsed {
                Ok(addr) => Some(addr),
                Err(_) => {
                    self.err(
                        format!("{path}.nameserver"),
                        format!("`{text}` is not an IP address or ip:port"),
                    );
                    None
                }
            }
        });
        let min_refresh = self
            .ms(path, "min_refresh_ms", min_refresh_ms)
            .unwrap_or(Duration::from_millis(d::DNS_MIN_REFRESH_MS));
        let max_refresh = self
            .ms(path, "max_refresh_ms", max_refresh_ms)
            .unwrap_or(Duration::from_millis(d::DNS_MAX_REFRESH_MS).max(min_refresh));
        if min_refresh > max_refresh {
            self.err(
                format!("{path}.max_refresh_ms"),
                format!(
                    "must be >= min_refresh_ms ({} ms), got {} ms",
                    min_refresh.as_millis(),
                    max_refresh.as_millis()
                ),
            );
        }
        Some(DiscoverySource::Dns {
            name,
            record,
            port,
            nameserver,
            min_refresh,
            max_refresh,
        })
    }
}
