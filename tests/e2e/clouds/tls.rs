//! `https://` replicas: rustls with a private CA from `tls.ca_file`, HTTP/2
//! by ALPN, and no trust without it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use switchyard_fake_replica::FakeProtocol;
use switchyard_tests::{Http, chat};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::{fake, start};

/// A TLS front on 127.0.0.1 for `backend` (a plain fake replica), with a
/// leaf certificate for 127.0.0.1 issued by a fresh CA. Returns its
/// address, the CA's PEM, and the ALPN protocol of each accepted connection.
async fn tls_front(backend: SocketAddr) -> (SocketAddr, String, Arc<Mutex<Vec<String>>>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let alpn = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&alpn);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let proto = tls.get_ref().1.alpn_protocol().unwrap_or_default();
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(proto).into_owned());
                let mut plain = TcpStream::connect(backend).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, ca_pem, alpn)
}

const CONFIG: &str = r#"
clouds: { dc: { provider: private } }
models: [{ name: chat, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: tls, model: chat, cloud: dc, url: "https://${FRONT}", tls: { ca_file: "${CA}" } }
"#;

#[tokio::test]
async fn https_replica_with_a_private_ca_is_reached_over_h2() {
    let replica = fake("tls", FakeProtocol::OpenAi, 3).await;
    let (front, ca_pem, alpn) = tls_front(replica.addr()).await;
    let ca = std::env::temp_dir().join(format!("switchyard-ca-{}.pem", front.port()));
    std::fs::write(&ca, ca_pem).unwrap();
    let gw = start(
        CONFIG,
        &[
            ("FRONT", front.to_string()),
            ("CA", ca.display().to_string()),
        ],
    )
    .await;
    let http = Http::default();
    for stream in [false, true] {
        let a = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("chat", stream))
            .await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    }
    assert_eq!(replica.hits(), 2);
    let alpn = alpn.lock().unwrap().clone();
    assert!(
        !alpn.is_empty() && alpn.iter().all(|p| p == "h2"),
        "{alpn:?}"
    );
    let _ = std::fs::remove_file(ca);
}

#[tokio::test]
async fn https_replica_is_not_trusted_without_its_ca() {
    let replica = fake("tls", FakeProtocol::OpenAi, 3).await;
    let (front, _ca, _) = tls_front(replica.addr()).await;
    let yaml = CONFIG.replace(r#", tls: { ca_file: "${CA}" }"#, "");
    let gw = start(&yaml, &[("FRONT", front.to_string())]).await;
    let a = Http::default()
        .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
        .await;
    assert_eq!(a.status, 502, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(replica.hits(), 0);
}

#[test]
fn metadata_addresses_are_refused_unless_allowed() {
    let yaml = |url: &str, extra: &str| {
        format!(
            "clouds: {{ dc: {{ provider: private }} }}\n\
             models: [{{ name: chat, versions: [{{ name: v1, weight: 100 }}] }}]\n\
             replicas:\n  - {{ id: r, model: chat, cloud: dc, url: \"{url}\"{extra} }}\n"
        )
    };
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]:8000",
    ] {
        let err = switchyard_config::load_str(&yaml(url, ""), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("replicas[0].url") && err.contains("allow_link_local"),
            "{err}"
        );
        switchyard_config::load_str(&yaml(url, ", allow_link_local: true"), &|_| None).unwrap();
    }
    let err = switchyard_config::load_str(&yaml("ftp://models.example", ""), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("replicas[0].url") && err.contains("expected http or https"),
        "{err}"
    );
}

#[tokio::test]
async fn redirects_are_passed_back_never_followed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Where a followed redirect would land, with the replica's credential.
    let target = fake("target", FakeProtocol::OpenAi, 3).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let location = format!("{}/v1/chat/completions", target.url());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let location = location.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = tcp.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
                );
                let _ = tcp.write_all(resp.as_bytes()).await;
            });
        }
    });
    let yaml = CONFIG
        .replace(
            r#", tls: { ca_file: "${CA}" }"#,
            r#", auth: { bearer: secret }"#,
        )
        .replace("https://${FRONT}", "http://${FRONT}");
    let gw = start(&yaml, &[("FRONT", addr.to_string())]).await;
    let a = Http::default()
        .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
        .await;
    assert_eq!(a.status, 307);
    assert_eq!(a.header("x-switchyard-attempts"), "1");
    assert_eq!(target.hits(), 0, "the redirect was followed");
}
