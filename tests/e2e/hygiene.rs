//! Connection hygiene: silent connections are closed, open connections are
//! capped per listener and per client IP, and headers and query strings
//! cross the gateway only where they belong.

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_fake_replica::{FakeProtocol, FakeReplica, ReplicaConfig, TEST_AZURE_API_KEY};
use switchyard_tests::{Http, chat, eventually, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const FLEET: &str = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r, model: m, cloud: c, url: "${R_URL}" }]
"#;

async fn gateway(
    server: &str,
    replica: ReplicaConfig,
) -> (switchyard_gateway::Running, FakeReplica) {
    let fleet = switchyard_tests::replicas(&[("r", replica)]).await;
    let gw = switchyard_tests::gateway(&format!("{server}{FLEET}"), &fleet).await;
    let replica = fleet.into_values().next().unwrap();
    (gw, replica)
}

/// Reads until the server closes: `true` for a clean EOF or a reset.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match within(stream.read(&mut buf)).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}

/// A connection from `source` (any 127.x address) that has been served
/// a request, so it is surely counted as open.
async fn served_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = within(socket.connect(addr)).await.unwrap();
    s.write_all(b"GET /v1/models HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    within(s.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    s
}

/// A connection from `source` that the gateway closes at once.
async fn refused_from(source: &str, addr: SocketAddr) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = within(socket.connect(addr)).await.unwrap();
    assert!(closed_by_server(&mut s).await);
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

async fn scrape(gw: &switchyard_gateway::Running) -> String {
    String::from_utf8(
        Http::default()
            .get(gw.admin_addr, "/metrics")
            .await
            .body
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn silent_connections_are_closed_within_the_header_read_timeout() {
    let (gw, _r) = gateway(
        "server: { limits: { header_read_timeout_ms: 300 } }\n",
        ReplicaConfig::default(),
    )
    .await;
    let started = tokio::time::Instant::now();
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(within(TcpStream::connect(gw.data_addr)).await.unwrap());
    }
    // One that starts a request head and stops is hyper's own timeout.
    let mut partial = within(TcpStream::connect(gw.data_addr)).await.unwrap();
    partial
        .write_all(b"GET /v1/models HTTP/1.1\r\n")
        .await
        .unwrap();
    for s in &mut silent {
        assert!(closed_by_server(s).await);
    }
    assert!(closed_by_server(&mut partial).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "closed after {took:?}"
    );
    // A connection that talks is served as before.
    drop(served_from("127.0.0.1", gw.data_addr).await);
    let text = scrape(&gw).await;
    assert_eq!(
        metric(&text, "switchyard_connections_silent_closed_total"),
        5.0
    );
}

#[tokio::test]
async fn connections_over_the_caps_are_closed_at_once_and_counted() {
    let (gw, _r) = gateway(
        "server: { limits: { max_connections: 3, max_connections_per_client: 2 } }\n",
        ReplicaConfig::default(),
    )
    .await;
    let addr = gw.data_addr;
    let a1 = served_from("127.0.0.1", addr).await;
    let _a2 = served_from("127.0.0.1", addr).await;
    refused_from("127.0.0.1", addr).await;
    let _b1 = served_from("127.0.0.2", addr).await;
    refused_from("127.0.0.2", addr).await;
    drop(a1);
    let conns = std::sync::Arc::clone(gw.proxy().connections());
    eventually("a closed connection frees its place", || conns.open() == 2).await;
    let _b2 = served_from("127.0.0.2", addr).await;

    let text = scrape(&gw).await;
    assert_eq!(
        metric(
            &text,
            "switchyard_connections_refused_total{cap=\"client\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "switchyard_connections_refused_total{cap=\"listener\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "switchyard_connections_open"), 3.0);
}

fn leaky_replica() -> ReplicaConfig {
    let pairs = [
        ("server", "vllm/0.6.3"),
        ("set-cookie", "route=r1"),
        ("x-upstream-internal-ip", "10.0.0.7"),
        ("x-ratelimit-remaining", "9"),
    ];
    ReplicaConfig {
        extra_headers: pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ..ReplicaConfig::default()
    }
}

#[tokio::test]
async fn replica_response_headers_are_filtered_by_default_and_by_config() {
    let http = Http::default();
    let (gw, _r) = gateway("", leaky_replica()).await;
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
        .await;
    assert_eq!(ans.status, 200);
    for dropped in ["server", "set-cookie", "x-upstream-internal-ip"] {
        assert!(
            ans.headers.get(dropped).is_none(),
            "{dropped} reached the client"
        );
    }
    assert_eq!(ans.header("x-ratelimit-remaining"), "9");
    assert_eq!(ans.header("x-switchyard-replica"), "r");

    let (gw, _r) = gateway(
        "server: { response_headers: { allow: [server], deny: [\"x-ratelimit-*\"] } }\n",
        leaky_replica(),
    )
    .await;
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
        .await;
    assert_eq!(ans.header("server"), "vllm/0.6.3");
    assert!(ans.headers.get("x-ratelimit-remaining").is_none());
    assert!(ans.headers.get("set-cookie").is_none());
}

const CLIENT_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("cookie", "session=client-secret"),
    ("x-real-ip", "6.6.6.6"),
    ("forwarded", "for=6.6.6.6"),
    ("x-amz-security-token", "client-aws-token"),
    ("x-ms-token-aad-access-token", "client-azure-token"),
    ("api-key", "client-key"),
    ("x-custom", "kept-for-private-replicas"),
];

/// What the gateway sets on a replica's request replaces the client's
/// header of that name (the request id, `accept-encoding`, the replica's
/// credential, `host`), once; a client's `x-forwarded-for` gets our peer
/// appended; what `Connection` lists stays here.
#[tokio::test]
async fn the_gateway_s_own_request_headers_replace_the_client_s_once() {
    let fleet = switchyard_tests::replicas(&[("r", ReplicaConfig::default())]).await;
    let yaml = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r, model: m, cloud: c, url: "${R_URL}",
             auth: { header: x-upstream-token, value: ours } }]
"#;
    let gw = switchyard_tests::gateway(yaml, &fleet).await;
    let replica = &fleet["r"];
    let body = chat("m", false).to_string();
    let ans = Http::default()
        .call(
            "POST",
            gw.data_addr,
            "/v1/chat/completions",
            &[
                ("x-forwarded-for", "10.0.0.1, 10.0.0.2"),
                ("x-request-id", "client-id-1"),
                ("accept-encoding", "gzip"),
                ("x-upstream-token", "theirs"),
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("x-custom", "kept"),
            ],
            body,
        )
        .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    let sent = replica.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    let all = |name: &str| -> Vec<String> {
        sent.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(all("x-forwarded-for"), ["10.0.0.1, 10.0.0.2, 127.0.0.1"]);
    assert_eq!(all("x-request-id"), ["client-id-1"]);
    assert_eq!(all("accept-encoding"), ["identity"]);
    assert_eq!(all("x-upstream-token"), ["ours"]);
    assert_eq!(all("host"), [replica.url().trim_start_matches("http://")]);
    assert_eq!(all("x-custom"), ["kept"]);
    assert!(all("x-hop").is_empty() && all("connection").is_empty());
    assert_eq!(all("content-length"), [sent.body.len().to_string()]);
}

#[tokio::test]
async fn client_cookies_addressing_cloud_tokens_and_queries_stay_here() {
    let http = Http::default();
    let (gw, replica) = gateway("", ReplicaConfig::default()).await;
    let body = chat("m", false).to_string();
    let ans = http
        .call(
            "POST",
            gw.data_addr,
            "/v1/chat/completions?api-key=sekrit&user=x",
            CLIENT_HEADERS,
            body.clone(),
        )
        .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    let sent = replica.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions", "no query string");
    for dropped in [
        "cookie",
        "x-real-ip",
        "forwarded",
        "x-amz-security-token",
        "api-key",
    ] {
        assert!(
            sent.headers.get(dropped).is_none(),
            "{dropped} reached the replica"
        );
    }
    assert_eq!(sent.headers["x-custom"], "kept-for-private-replicas");
    assert_eq!(sent.headers["x-forwarded-for"], "127.0.0.1");

    // A cloud replica gets only what its protocol needs.
    let azure = FakeReplica::start(ReplicaConfig {
        name: "az".into(),
        protocol: FakeProtocol::azure(),
        ..ReplicaConfig::default()
    })
    .await
    .unwrap();
    let yaml = format!(
        r#"
clouds: {{ azure-we: {{ provider: azure }} }}
models: [{{ name: gpt, versions: [{{ name: v1, weight: 100 }}] }}]
replicas:
  - {{ id: az, model: gpt, cloud: azure-we, url: "{}", protocol: azure_openai,
      azure: {{ deployment: d, api_version: "2024-06-01" }},
      auth: {{ header: api-key, value: "{TEST_AZURE_API_KEY}" }} }}
"#,
        azure.url()
    );
    let config = switchyard_config::load_str(&yaml, &|_| None).unwrap();
    let data = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = switchyard_gateway::start_on(config, data, admin).unwrap();
    let body = chat("gpt", false).to_string();
    let ans = http
        .call(
            "POST",
            gw.data_addr,
            "/v1/chat/completions?api-version=evil",
            CLIENT_HEADERS,
            body,
        )
        .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    let sent = azure.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/openai/deployments/d/chat/completions?api-version=2024-06-01"
    );
    assert_eq!(
        sent.headers["api-key"], TEST_AZURE_API_KEY,
        "ours, not the client's"
    );
    for dropped in [
        "cookie",
        "x-amz-security-token",
        "x-ms-token-aad-access-token",
        "x-custom",
        "x-real-ip",
    ] {
        assert!(
            sent.headers.get(dropped).is_none(),
            "{dropped} reached the cloud replica"
        );
    }
}

#[tokio::test]
async fn silent_admin_connections_are_closed_too() {
    let (gw, _r) = gateway(
        "server: { limits: { header_read_timeout_ms: 300 } }\n",
        ReplicaConfig::default(),
    )
    .await;
    let started = tokio::time::Instant::now();
    let mut silent = within(TcpStream::connect(gw.admin_addr)).await.unwrap();
    assert!(closed_by_server(&mut silent).await);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        Http::default().get(gw.admin_addr, "/healthz").await.status,
        200
    );
}
