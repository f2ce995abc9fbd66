//! A tiny authoritative nameserver on 127.0.0.1 for discovery tests: A and
//! SRV answers (SRV with its targets' addresses in the additional section)
//! from a zone the test changes while the gateway runs, SERVFAIL on demand.
//! UDP only; answers are built with hickory-proto's wire types.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

/// What the server answers.
#[derive(Debug, Default, Clone)]
struct Zone {
    a: HashMap<String, Vec<Ipv4Addr>>,
    /// name -> (target, port)
    srv: HashMap<String, Vec<(String, u16)>>,
    ttl: u32,
    fail: bool,
}

/// The running server; stops when dropped.
pub struct FakeDns {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl FakeDns {
    /// Starts on 127.0.0.1, a free port; records have TTL `ttl` seconds.
    pub async fn start(ttl: u32) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone {
            ttl,
            ..Zone::default()
        }));
        let queries = Arc::new(AtomicU64::new(0));
        let (z, q) = (Arc::clone(&zone), Arc::clone(&queries));
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                q.fetch_add(1, Ordering::Relaxed);
                let zone = z.lock().unwrap().clone();
                if let Some(reply) = answer(&zone, &buf[..n]) {
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        Self {
            addr,
            zone,
            queries,
            task,
        }
    }

    /// Its address (a template's `nameserver`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `name` now has these A records (empty: the name does not exist).
    pub fn set_a(&self, name: &str, ips: &[Ipv4Addr]) {
        let mut zone = self.zone.lock().unwrap();
        if ips.is_empty() {
            zone.a.remove(&key(name));
        } else {
            zone.a.insert(key(name), ips.to_vec());
        }
    }

    /// `name` now has these SRV records: (target, port).
    pub fn set_srv(&self, name: &str, targets: &[(&str, u16)]) {
        let list = targets.iter().map(|(t, p)| (key(t), *p)).collect();
        self.zone.lock().unwrap().srv.insert(key(name), list);
    }

    /// Answer every query with SERVFAIL (or stop doing so).
    pub fn fail(&self, fail: bool) {
        self.zone.lock().unwrap().fail = fail;
    }

    /// Queries received so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(zone: &Zone, packet: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let q = query.queries.first()?.clone();
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.authoritative = true;
    reply.add_query(q.clone());
    let name = key(&q.name().to_string());
    let record = |owner: &str, data: RData| {
        Record::from_rdata(
            Name::from_ascii(format!("{owner}.")).unwrap(),
            zone.ttl,
            data,
        )
    };
    if zone.fail {
        reply.metadata.response_code = ResponseCode::ServFail;
        return reply.to_vec().ok();
    }
    match q.query_type() {
        RecordType::A if zone.a.contains_key(&name) => {
            for ip in &zone.a[&name] {
                reply.add_answer(record(&name, RData::A(A(*ip))));
            }
        }
        RecordType::SRV if zone.srv.contains_key(&name) => {
            for (target, port) in &zone.srv[&name] {
                let to = Name::from_ascii(format!("{target}.")).unwrap();
                reply.add_answer(record(&name, RData::SRV(SRV::new(0, 0, *port, to))));
                for ip in zone.a.get(target).into_iter().flatten() {
                    reply.add_additional(record(target, RData::A(A(*ip))));
                }
            }
        }
        _ if zone.a.contains_key(&name) || zone.srv.contains_key(&name) => {}
        _ => reply.metadata.response_code = ResponseCode::NXDomain,
    }
    reply.to_vec().ok()
}
