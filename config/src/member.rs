//! A template's member as a replica, and the check of a registered URL.
//! Apart from [`crate::discovery`] so that the model's types do not import
//! what imports them.

use std::net::SocketAddr;

use url::Url;

use crate::discovery::DiscoverySource;
use crate::model::Replica;

impl Replica {
    /// The member of this template at `addr`: the template's settings with
    /// the URL's host and port replaced (scheme and path kept). Its id is
    /// `template@addr` unless `id` is given, and can never equal a
    /// configured id (`@` is not allowed in those). `None` when `self` is
    /// not a template.
    pub fn member(&self, addr: SocketAddr, id: Option<String>) -> Option<Replica> {
        let discovery = self.discovery.as_ref()?;
        let mut url = self.url.clone();
        url.set_ip_host(addr.ip()).ok()?;
        url.set_port(Some(addr.port())).ok()?;
        Some(Replica {
            id: id.unwrap_or_else(|| format!("{}@{addr}", self.id)),
            url,
            discovery: None,
            membership: discovery.source.kind(),
            template: Some(self.id.clone()),
            ..self.clone()
        })
    }

    /// The port a member at a bare address gets: `discovery.port`, else
    /// the template URL's (or its scheme's default).
    pub fn member_port(&self) -> u16 {
        let from_url = self.url.port_or_known_default().unwrap_or(80);
        match self.discovery.as_ref().map(|d| &d.source) {
            Some(DiscoverySource::Dns {
                port: Some(port), ..
            }) => *port,
            _ => from_url,
        }
    }
}

/// A registered member's URL must be a plain `http(s)://ip:port` address
/// with nothing else: the template supplies the path and every setting.
pub fn member_addr(url: &str) -> Result<SocketAddr, String> {
    let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` (expected http or https)",
            parsed.scheme()
        ));
    }
    if parsed.path() != "/" || parsed.query().is_some() || !parsed.username().is_empty() {
        return Err("give only scheme, address and port; the template supplies the path".into());
    }
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        _ => return Err("the host must be an IP address".into()),
    };
    if ip.is_unspecified() {
        return Err(format!("{ip} is not a destination"));
    }
    if crate::validate::metadata_address(&parsed).is_some() {
        return Err("a link-local / cloud metadata address is refused (SSRF guard)".into());
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    Ok(SocketAddr::new(ip, port))
}
