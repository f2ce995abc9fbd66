//! A scripted raw-TCP upstream: answers every request with canned bytes,
//! so tests can send what no well-behaved server would (conflicting
//! framing, invalid statuses, half events, comment drips).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// One thing the upstream does on a connection, in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Write these bytes `times` times, `every` apart (a drip).
    Drip {
        bytes: Vec<u8>,
        every: Duration,
        times: usize,
    },
    /// Keep the connection open and say nothing more.
    Hang,
}

impl Step {
    /// [`Step::Write`] of a string.
    pub fn write(s: impl AsRef<[u8]>) -> Self {
        Step::Write(s.as_ref().to_vec())
    }
}

type Script = dyn Fn(&str) -> Vec<Step> + Send + Sync;

/// A running scripted upstream; stops when dropped.
pub struct Scripted {
    addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    _tasks: JoinSet<()>,
}

impl Scripted {
    /// Starts an upstream that answers each request (given its head, lower
    /// cased) with `script(head)`; the connection closes after the last step.
    pub async fn start(script: impl Fn(&str) -> Vec<Step> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let mut tasks = JoinSet::new();
        let (h, r) = (Arc::clone(&hits), Arc::clone(&heads));
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (script, hits, heads) = (Arc::clone(&script), Arc::clone(&h), Arc::clone(&r));
                conns.spawn(async move {
                    serve(stream, &*script, &hits, &heads).await;
                });
            }
        });
        Self {
            addr,
            hits,
            heads,
            _tasks: tasks,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The heads of the requests received so far (lower cased).
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    script: &Script,
    hits: &AtomicUsize,
    heads: &Mutex<Vec<String>>,
) {
    // Read the head, then the body its Content-Length announces.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    heads.lock().unwrap().push(head.clone());
    hits.fetch_add(1, Ordering::SeqCst);
    for step in script(&head) {
        match step {
            Step::Write(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Step::Drip {
                bytes,
                every,
                times,
            } => {
                for _ in 0..times {
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
            }
            Step::Hang => {
                // Until the peer closes.
                let _ = stream.read(&mut chunk).await;
                return;
            }
        }
    }
    let _ = stream.shutdown().await;
}
