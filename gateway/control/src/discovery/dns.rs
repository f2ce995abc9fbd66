//! One DNS resolution of a template's name, with hickory's resolver: A,
//! AAAA, or SRV (RFC 2782; each target's addresses, from the answer's
//! additional section or looked up) — Envoy's DNS clusters have no SRV.
//! The resolver caches nothing: the loop asks on the record's TTL itself,
//! so a removed address is seen on the first look after the TTL.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use switchyard_config::DnsRecord;

/// Longest a resolution may take before it counts as a failure.
const TIMEOUT: Duration = Duration::from_secs(2);

/// What a name resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Every member address (IP and port), sorted, no duplicates.
    pub addrs: Vec<SocketAddr>,
    /// The smallest TTL of the records used.
    pub ttl: Duration,
}

/// A resolver asking `nameserver` (UDP, then TCP), or the system's.
fn resolver(nameserver: Option<SocketAddr>) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match nameserver {
        Some(ns) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = ns.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = ns.port();
            let server = NameServerConfig::new(ns.ip(), true, vec![udp, tcp]);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                provider,
            )
        }
        None => TokioResolver::builder(provider)
            .map_err(|e| format!("system resolver configuration: {e}"))?,
    };
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.timeout = TIMEOUT;
    opts.attempts = 1;
    builder.build().map_err(|e| format!("resolver: {e}"))
}

/// Resolves `name` as `record`; A/AAAA members get `port`. An empty answer
/// is an error: the caller keeps the last good members.
pub async fn resolve(
    name: &str,
    record: DnsRecord,
    port: u16,
    nameserver: Option<SocketAddr>,
) -> Result<Answer, String> {
    let resolver = resolver(nameserver)?;
    let lookup = tokio::time::timeout(TIMEOUT * 2, async {
        match record {
            DnsRecord::A => addresses(&resolver, name, RecordType::A, port).await,
            DnsRecord::Aaaa => addresses(&resolver, name, RecordType::AAAA, port).await,
            DnsRecord::Srv => srv(&resolver, name).await,
        }
    })
    .await
    .map_err(|_| format!("{name}: no answer within {} s", (TIMEOUT * 2).as_secs()))??;
    let (mut addrs, ttl) = lookup;
    addrs.sort_unstable();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("{name} resolved to no {} address", record.as_str()));
    }
    Ok(Answer { addrs, ttl })
}

fn ip_of(r: &Record) -> Option<IpAddr> {
    match &r.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

async fn addresses(
    resolver: &TokioResolver,
    name: &str,
    kind: RecordType,
    port: u16,
) -> Result<(Vec<SocketAddr>, Duration), String> {
    let lookup = resolver
        .lookup(name, kind)
        .await
        .map_err(|e| format!("{name} {kind}: {e}"))?;
    let mut ttl = u32::MAX;
    let addrs = lookup
        .answers()
        .iter()
        .filter(|r| r.record_type() == kind)
        .filter_map(|r| {
            ttl = ttl.min(r.ttl);
            ip_of(r).map(|ip| SocketAddr::new(ip, port))
        })
        .collect();
    Ok((addrs, Duration::from_secs(u64::from(ttl.min(86_400)))))
}

async fn srv(resolver: &TokioResolver, name: &str) -> Result<(Vec<SocketAddr>, Duration), String> {
    let lookup = resolver
        .lookup(name, RecordType::SRV)
        .await
        .map_err(|e| format!("{name} SRV: {e}"))?;
    let mut ttl = u32::MAX;
    let mut addrs = Vec::new();
    for r in lookup.answers() {
        let RData::SRV(srv) = &r.data else { continue };
        ttl = ttl.min(r.ttl);
        // The target's addresses: from the additional section when the
        // server sent them, else looked up (A, then AAAA).
        let glued: Vec<IpAddr> = lookup
            .additionals()
            .iter()
            .filter(|a| a.name == srv.target)
            .filter_map(|a| {
                ttl = ttl.min(a.ttl);
                ip_of(a)
            })
            .collect();
        if !glued.is_empty() {
            addrs.extend(glued.into_iter().map(|ip| SocketAddr::new(ip, srv.port)));
            continue;
        }
        let target = srv.target.to_string();
        for kind in [RecordType::A, RecordType::AAAA] {
            if let Ok((found, t)) = addresses(resolver, &target, kind, srv.port).await {
                ttl = ttl.min(t.as_secs() as u32);
                addrs.extend(found);
            }
        }
    }
    Ok((addrs, Duration::from_secs(u64::from(ttl.min(86_400)))))
}
