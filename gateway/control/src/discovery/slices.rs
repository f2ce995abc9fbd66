//! EndpointSlices → member addresses: pure, so every case the API allows
//! (several slices per Service, dual-stack, terminating endpoints, absent
//! conditions, named or numbered ports) is tested without a cluster.
//!
//! Conditions, per the EndpointSlice API: `ready` absent means ready;
//! `terminating` absent means not terminating. A ready endpoint is a
//! member. A terminating one is not, even while `serving`: it takes no new
//! requests, and leaving the member set drains its in-flight requests
//! (vllm production-stack #601 routed to Terminating pods). A not-ready
//! one is absent.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use switchyard_config::KubePort;

/// What an endpoint's conditions make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Ready, not terminating: a member.
    Ready,
    /// Terminating but still serving: no new requests, in-flight finish.
    Draining,
    /// Not ready, or terminating and no longer serving: not routable.
    NotReady,
}

/// `endpoint`'s state under the API's defaults for absent conditions.
pub fn state(endpoint: &Endpoint) -> State {
    let c = endpoint.conditions.as_ref();
    let ready = c.and_then(|c| c.ready).unwrap_or(true);
    let serving = c.and_then(|c| c.serving).unwrap_or(ready);
    let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
    match (terminating, serving, ready) {
        (true, true, _) => State::Draining,
        (true, false, _) | (false, _, false) => State::NotReady,
        (false, _, true) => State::Ready,
    }
}

/// The port `slice` gives for `want`, if it serves it over TCP. A slice
/// port with no number means "all ports" (a Service without ports), so a
/// numbered `want` matches it; a named one needs the name and a number.
pub fn port_of(slice: &EndpointSlice, want: &KubePort) -> Option<u16> {
    let tcp = |p: &&k8s_openapi::api::discovery::v1::EndpointPort| {
        p.protocol.as_deref().is_none_or(|proto| proto == "TCP")
    };
    let ports = slice.ports.as_deref().unwrap_or_default();
    match want {
        KubePort::Name(name) => ports
            .iter()
            .filter(tcp)
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.port?).ok()),
        KubePort::Number(n) => ports
            .iter()
            .filter(tcp)
            .any(|p| p.port.is_none_or(|p| p == i32::from(*n)))
            .then_some(*n),
    }
}

/// `slice`'s endpoints with their state, at the port `want` picks (none
/// when the slice does not serve that port). Addresses that do not parse
/// as the slice's `addressType` (or FQDN slices) are skipped.
pub fn endpoints(slice: &EndpointSlice, want: &KubePort) -> Vec<(SocketAddr, State)> {
    let Some(port) = port_of(slice, want) else {
        return Vec::new();
    };
    let family = slice.address_type.as_str();
    slice
        .endpoints
        .iter()
        .flat_map(|e| {
            let st = state(e);
            e.addresses.iter().filter_map(move |a| {
                let ip: IpAddr = a.parse().ok()?;
                let fits = matches!(
                    (family, ip),
                    ("IPv4", IpAddr::V4(_)) | ("IPv6", IpAddr::V6(_))
                );
                fits.then_some((SocketAddr::new(ip, port), st))
            })
        })
        .collect()
}

/// The ready addresses of `slice` at `want`.
pub fn ready(slice: &EndpointSlice, want: &KubePort) -> Vec<SocketAddr> {
    endpoints(slice, want)
        .into_iter()
        .filter(|(_, s)| *s == State::Ready)
        .map(|(a, _)| a)
        .collect()
}

/// One step of a list + watch, as the loop sees it.
#[derive(Debug)]
pub enum Step {
    /// A (re-)list starts: the slices that follow replace all known ones.
    ListStart,
    /// One slice of the list.
    Listed(EndpointSlice),
    /// The list is complete: the new set replaces the old at once.
    ListDone,
    /// A watched slice was added or modified.
    Applied(EndpointSlice),
    /// A watched slice was deleted.
    Deleted(EndpointSlice),
}

/// A Service's slices as last listed and watched, keyed by slice name.
#[derive(Debug)]
pub struct Tracker {
    port: KubePort,
    slices: BTreeMap<String, Vec<SocketAddr>>,
    listing: Option<BTreeMap<String, Vec<SocketAddr>>>,
}

impl Tracker {
    /// Nothing known yet.
    pub fn new(port: KubePort) -> Self {
        Tracker {
            port,
            slices: BTreeMap::new(),
            listing: None,
        }
    }

    /// Applies `step`; returns the full member set when it may have changed
    /// (never in the middle of a list: a half-read list is not published,
    /// and one that ends replaces everything, so a pod deleted while the
    /// watch was down is gone — vllm production-stack #1091).
    pub fn step(&mut self, step: Step) -> Option<Vec<SocketAddr>> {
        let name = |s: &EndpointSlice| s.metadata.name.clone().unwrap_or_default();
        match step {
            Step::ListStart => {
                self.listing = Some(BTreeMap::new());
                None
            }
            Step::Listed(s) => {
                let addrs = ready(&s, &self.port);
                self.listing.get_or_insert_default().insert(name(&s), addrs);
                None
            }
            Step::ListDone => {
                self.slices = self.listing.take().unwrap_or_default();
                Some(self.members())
            }
            Step::Applied(s) => {
                let addrs = ready(&s, &self.port);
                self.slices.insert(name(&s), addrs);
                Some(self.members())
            }
            Step::Deleted(s) => {
                self.slices.remove(&name(&s));
                Some(self.members())
            }
        }
    }

    /// Every ready address of every slice, sorted, no duplicates (an
    /// endpoint may sit in two slices while the controller moves it).
    pub fn members(&self) -> Vec<SocketAddr> {
        let mut all: Vec<SocketAddr> = self.slices.values().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests;
