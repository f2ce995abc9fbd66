//! Open client connections: the caps per listener and per client IP, and
//! the counts of connections refused or closed for silence. The accept
//! loop (`app/server.rs`) asks [`Connections::admit`] once per accepted
//! connection, never per request; metrics read the counts at scrape time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::worker;

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `server.limits.max_connections` were open.
    Listener,
    /// `server.limits.max_connections_per_client` were open from its IP.
    Client,
}

/// The open connections and what happened to the others.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    refused_listener: AtomicU64,
    refused_client: AtomicU64,
    silent: AtomicU64,
    /// Admitted, per data-plane worker shard ([`crate::worker`]): how
    /// evenly the kernel spreads connections over the workers.
    accepted: [AtomicU64; worker::SHARDS],
}

/// Held by a connection while it is open; dropping it frees its place.
#[derive(Debug)]
pub struct ConnPermit {
    conns: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// Counts a connection from `ip` in, or refuses it (and counts that)
    /// when `max` are open or `per_client` from `ip`.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max: usize,
        per_client: usize,
    ) -> Result<ConnPermit, Refused> {
        let mut clients = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if self.open.load(Ordering::Relaxed) >= max {
            self.refused_listener.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Listener);
        }
        let n = clients.entry(ip).or_insert(0);
        if *n >= per_client {
            self.refused_client.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Client);
        }
        *n += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        self.accepted[worker::shard()].fetch_add(1, Ordering::Relaxed);
        Ok(ConnPermit {
            conns: Arc::clone(self),
            ip,
        })
    }

    /// Counts a connection closed because it sent nothing in time.
    pub fn closed_silent(&self) {
        self.silent.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed at once for `why`, since start.
    pub fn refused(&self, why: Refused) -> u64 {
        match why {
            Refused::Listener => self.refused_listener.load(Ordering::Relaxed),
            Refused::Client => self.refused_client.load(Ordering::Relaxed),
        }
    }

    /// Connections admitted since start, per worker that accepted them
    /// (workers that accepted none are left out).
    pub fn accepted(&self) -> Vec<(usize, u64)> {
        self.accepted
            .iter()
            .enumerate()
            .map(|(w, n)| (w, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Connections closed for sending nothing within
    /// `header_read_timeout_ms`, since start.
    pub fn silent(&self) -> u64 {
        self.silent.load(Ordering::Relaxed)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut clients = self
            .conns
            .per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = clients.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&self.ip);
            }
        }
        self.conns.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_listener_and_per_client_and_places_come_back() {
        let c = Arc::new(Connections::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = c.admit(a, 3, 2).unwrap();
        let _a2 = c.admit(a, 3, 2).unwrap();
        assert_eq!(c.admit(a, 3, 2).unwrap_err(), Refused::Client);
        let _b1 = c.admit(b, 3, 2).unwrap();
        assert_eq!(c.admit(b, 3, 2).unwrap_err(), Refused::Listener);
        assert_eq!(c.open(), 3);
        drop(a1);
        assert_eq!(c.open(), 2);
        let _a3 = c.admit(a, 3, 2).unwrap();
        assert_eq!(
            (c.refused(Refused::Client), c.refused(Refused::Listener)),
            (1, 1)
        );
    }
}
