//! Just enough of the W3C WebDriver protocol to drive headless Chromium
//! through `chromedriver`: open a page, run a script, type, click, take a
//! screenshot. It is JSON over HTTP on loopback, so the test needs no
//! WebDriver crate (fantoccini would add cookie, TLS and webdriver-crate
//! dependencies for six calls).
//!
//! [`Browser::start`] runs `chromedriver` on a free 127.0.0.1 port in its own
//! process group; dropping the [`Browser`] kills that group, Chromium
//! included, so a failed test leaves nothing behind.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Bound on one WebDriver call (starting Chromium is the slow one).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `chromedriver`, killed (with its browsers) on drop.
pub struct Browser {
    addr: SocketAddr,
    http: Client<HttpConnector, Full<Bytes>>,
    child: Child,
}

/// One browser window.
pub struct Session<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver. Panics, with the fix, when Chromium is missing:
    /// the dashboard test must fail on a machine without a browser, not skip.
    pub async fn start() -> Self {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} not found: the dashboard browser test needs Chromium and chromedriver; \
                 run scripts/install-deps (apt-get install chromium chromium-driver)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--log-level=SEVERE")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
            0,
        )
        .spawn()
        .expect("spawning chromedriver");
        let browser = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            http: Client::builder(TokioExecutor::new()).build_http(),
            child,
        };
        browser.wait_ready().await;
        browser
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let ready = self.call("GET", "/status", None).await;
            if ready.as_ref().is_ok_and(|v| v["value"]["ready"] == true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not become ready: {ready:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a headless Chromium window of `width` x `height` CSS pixels,
    /// telling pages the user prefers a dark colour scheme when `dark`.
    pub async fn session(&self, width: u32, height: u32, dark: bool) -> Session<'_> {
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-background-networking".to_owned(),
            format!("--window-size={width},{height}"),
        ];
        if dark {
            args.push("--force-dark-mode".to_owned());
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
            },
        }}});
        let v = self
            .call("POST", "/session", Some(caps))
            .await
            .expect("creating a Chromium session");
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_owned();
        Session { browser: self, id }
    }

    /// One WebDriver command; an error is a transport problem or a
    /// WebDriver error answer (`value.error`).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| e.to_string())?;
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            serde_json::from_slice::<Value>(&body.to_bytes()).map_err(|e| e.to_string())
        };
        let v = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{method} {path}: no answer in {CALL_TIMEOUT:?}"))??;
        match v["value"]["error"].as_str() {
            Some(err) => Err(format!("{method} {path}: {err}: {}", v["value"]["message"])),
            None => Ok(v),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium processes it started.
        // A typed killpg, never the `kill` binary: procps 4 reads
        // `kill -KILL -PGID` as `kill -1`, every process the user may signal.
        let killed = i32::try_from(self.child.id())
            .ok()
            .filter(|pgid| *pgid > 1)
            .is_some_and(|pgid| killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok());
        if !killed {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Session<'_> {
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.id);
        match self.browser.call(method, &path, body).await {
            Ok(v) => v["value"].clone(),
            Err(e) => panic!("WebDriver: {e}"),
        }
    }

    /// Navigates and waits for the page's load event.
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        let body = json!({ "script": script, "args": [] });
        self.cmd("POST", "/execute/sync", Some(body)).await
    }

    /// Re-evaluates `script` until it returns something other than
    /// `null`/`false`, and returns that; panics after `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let v = self.eval(script).await;
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
            if tokio::time::Instant::now() >= deadline {
                let state = self
                    .eval("return [document.body.dataset.state, document.getElementById('conn-text').textContent]")
                    .await;
                panic!("never happened within {limit:?}: {what} (page state {state})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn find(&self, css: &str) -> String {
        let body = json!({ "using": "css selector", "value": css });
        let v = self.cmd("POST", "/element", Some(body)).await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    /// Types `text` into the element matching `css`, as a user would.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        let body = json!({ "text": text });
        self.cmd("POST", &format!("/element/{el}/value"), Some(body))
            .await;
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd("POST", &format!("/element/{el}/click"), Some(json!({})))
            .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd("GET", "/screenshot", None).await;
        base64_decode(v.as_str().expect("base64 screenshot"))
    }

    /// Closes the window (and Chromium with it).
    pub async fn close(self) {
        let _ = self
            .browser
            .call("DELETE", &format!("/session/{}", self.id), None)
            .await;
    }
}

/// Standard base64 (WebDriver screenshots), padding and whitespace ignored.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:#x}"),
        }
    };
    let digits: Vec<u32> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, d)| acc | (d << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_round_trips_known_values() {
    assert_eq!(base64_decode("TWFu"), b"Man");
    assert_eq!(base64_decode("TWE="), b"Ma");
    assert_eq!(base64_decode("TQ=="), b"M");
    assert_eq!(
        base64_decode("iVBO\nRw0K"),
        [0x89, b'P', b'N', b'G', 13, 10]
    );
}
