//! `server.tls`: the data listener serves HTTPS with the configured
//! certificate, HTTP/2 or HTTP/1.1 by ALPN, and no plaintext.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{chat, replicas, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A self-signed certificate for 127.0.0.1, written to two temp files.
fn cert_files() -> (String, String, CertificateDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = std::env::temp_dir();
    let n = format!("{}-{}", std::process::id(), unique());
    let (c, k) = (
        dir.join(format!("sy-tls-{n}.crt")),
        dir.join(format!("sy-tls-{n}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (
        c.display().to_string(),
        k.display().to_string(),
        cert.der().clone(),
    )
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A TLS connection to `addr` trusting only `ca`, offering `alpn`.
async fn connect(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    within(TlsConnector::from(Arc::new(config)).connect(name, tcp))
        .await
        .unwrap()
}

fn yaml(cert: &str, key: &str, url: &str) -> String {
    format!(
        r#"
server:
  tls: {{ cert_file: "{cert}", key_file: "{key}" }}
clouds: {{ c: {{ provider: private }} }}
models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]
replicas: [{{ id: r, model: m, cloud: c, url: "{url}" }}]
"#
    )
}

fn request(uri: &str, body: &serde_json::Value) -> http::Request<Full<Bytes>> {
    http::Request::post(uri)
        .header("content-type", "application/json")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

#[tokio::test]
async fn the_data_listener_serves_https_over_h2_and_http1_and_no_plaintext() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let (cert, key, ca) = cert_files();
    let gw = switchyard_tests::gateway(&yaml(&cert, &key, "${R_URL}"), &fleet).await;
    let addr = gw.data_addr;

    // HTTP/2, chosen by ALPN.
    let tls = connect(addr, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let uri = format!("https://{addr}/v1/chat/completions");
    let resp = within(h2.send_request(request(&uri, &chat("m", true))))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = within(resp.into_body().collect()).await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("data:"), "a stream");

    // HTTP/1.1 for a client that offers only that.
    let tls = connect(addr, &ca, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = within(h1.send_request(request("/v1/chat/completions", &chat("m", false))))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(fleet["r"].hits(), 2);

    // Plaintext gets no HTTP answer.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = within(tcp.read_to_end(&mut buf)).await;
    assert!(
        !buf.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    let _ = (std::fs::remove_file(cert), std::fs::remove_file(key));
}

#[tokio::test]
async fn a_reload_renews_the_certificate_for_new_connections() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let (cert, key, old_ca) = cert_files();
    let gw = switchyard_tests::gateway(&yaml(&cert, &key, "${R_URL}"), &fleet).await;
    let old = connect(gw.data_addr, &old_ca, &[b"http/1.1"]).await;

    let (new_cert, new_key, new_ca) = cert_files();
    let ans = switchyard_tests::Http::default()
        .call(
            "POST",
            gw.admin_addr,
            "/admin/config",
            &[("content-type", "application/yaml")],
            yaml(&new_cert, &new_key, &fleet["r"].url()),
        )
        .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);

    // A new connection gets the new certificate; the open one keeps serving.
    let fresh = connect(gw.data_addr, &new_ca, &[b"http/1.1"]).await;
    for tls in [old, fresh] {
        let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = within(h1.send_request(request("/v1/chat/completions", &chat("m", false))))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    for f in [cert, key, new_cert, new_key] {
        let _ = std::fs::remove_file(f);
    }
}

#[tokio::test]
async fn a_handshake_that_stalls_is_closed_after_header_read_timeout() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let (cert, key, _) = cert_files();
    let text = yaml(&cert, &key, "${R_URL}").replace(
        "server:\n",
        "server:\n  limits: { header_read_timeout_ms: 300 }\n",
    );
    let gw = switchyard_tests::gateway(&text, &fleet).await;
    let mut tcp = TcpStream::connect(gw.data_addr).await.unwrap();
    // The first byte of a TLS record, then nothing.
    tcp.write_all(&[0x16]).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = within(tcp.read_to_end(&mut buf)).await;
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(250)
            && waited < std::time::Duration::from_secs(5),
        "closed after {waited:?}"
    );
    let _ = (std::fs::remove_file(cert), std::fs::remove_file(key));
}
