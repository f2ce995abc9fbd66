//! A client that speaks HTTP/1 by hand, to send what a library would not.

use std::net::SocketAddr;

use switchyard_tests::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response read off a raw connection.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A client connection speaking HTTP/1 by hand.
pub struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn open(addr: SocketAddr) -> Self {
        let s = within(TcpStream::connect(addr)).await.unwrap();
        Self { s, buf: Vec::new() }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Reads more; `false` at the end of the connection.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match within(self.s.read(&mut chunk)).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "connection ended inside a response");
        }
        self.buf.drain(..n).collect()
    }

    pub async fn line(&mut self) -> String {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(at + 2).await;
                return String::from_utf8_lossy(&line[..at]).into_owned();
            }
            assert!(self.fill().await, "connection ended inside a line");
        }
    }

    /// The next response; `no_body`: it answers a `HEAD`.
    pub async fn reply(&mut self, no_body: bool) -> Reply {
        let mut head = String::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            head.push_str(&line);
            head.push('\n');
        }
        let status = head[9..12].parse().unwrap();
        let mut reply = Reply {
            status,
            head,
            body: Vec::new(),
        };
        if no_body {
            return reply;
        }
        if let Some(n) = reply.header("content-length") {
            reply.body = self.take(n.parse().unwrap()).await;
        } else if reply.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line().await, 16).unwrap();
                let data = self.take(size + 2).await;
                if size == 0 {
                    break;
                }
                reply.body.extend_from_slice(&data[..size]);
            }
        } else {
            while self.fill().await {}
            reply.body = std::mem::take(&mut self.buf);
        }
        reply
    }

    /// Whether the gateway closed the connection (nothing more comes).
    pub async fn closed(&mut self) -> bool {
        !self.fill().await && self.buf.is_empty()
    }
}
