//! `server.tls` certificates over time and from clients: files renewed on
//! disk are served to new connections without a config change (a broken
//! renewal keeps the old certificate); client certificates verified
//! against `client_ca_file`, `required` or `optional`, and mapped to a
//! tenant by `client_cert_names`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{chat, replicas, within};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A fresh directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sy-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A self-signed server certificate for 127.0.0.1: (cert PEM, key PEM, DER).
fn server_cert() -> (String, String, CertificateDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

/// Writes `text` to `path` the way renewals do: a temp file renamed over it.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A TLS connection trusting `roots`, presenting `identity` if given.
async fn connect(
    addr: SocketAddr,
    roots: &[&CertificateDer<'static>],
    identity: Option<Identity>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add((*r).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store);
    let mut config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    within(TlsConnector::from(Arc::new(config)).connect(name, tcp)).await
}

/// The certificate the server presented.
fn served(tls: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// POSTs a chat for `model` on `tls`; the status, or `None` when the
/// connection fails (a refused client certificate).
async fn post(
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    model: &str,
    key: Option<&str>,
) -> Option<u16> {
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .ok()?;
    tokio::spawn(conn);
    let mut req = http::Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("host", "127.0.0.1");
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    let req = req
        .body(Full::new(Bytes::from(chat(model, false).to_string())))
        .unwrap();
    within(h1.send_request(req))
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test]
async fn certificate_files_renewed_on_disk_reach_new_connections() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let dir = temp_dir("tls-watch");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let (a_pem, a_key, a) = server_cert();
    std::fs::write(&cert, &a_pem).unwrap();
    std::fs::write(&key, &a_key).unwrap();
    let yaml = format!(
        "server:\n  tls: {{ cert_file: \"{}\", key_file: \"{}\" }}\n\
         clouds: {{ c: {{ provider: private }} }}\n\
         models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]\n\
         replicas: [{{ id: r, model: m, cloud: c, url: \"${{R_URL}}\" }}]\n",
        cert.display(),
        key.display()
    );
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    let (b_pem, b_key, b) = server_cert();
    let (c_pem, c_key, c) = server_cert();
    let trust = [&a, &b, &c];
    let first = connect(gw.data_addr, &trust, None).await.unwrap();
    assert_eq!(served(&first), a);

    // The renewal: key, then certificate (a moment with a mismatched pair).
    replace(&key, &b_key);
    replace(&cert, &b_pem);
    let serves = |want: CertificateDer<'static>, allowed: Vec<CertificateDer<'static>>| async move {
        for _ in 0..500 {
            let tls = connect(gw.data_addr, &trust, None).await.unwrap();
            let got = served(&tls);
            assert!(allowed.contains(&got), "served a certificate it should not");
            if got == want {
                return tls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the renewed certificate was never served");
    };
    let second = serves(b.clone(), vec![a.clone(), b.clone()]).await;
    assert_eq!(post(second, "m", None).await, Some(200));
    assert_eq!(
        post(first, "m", None).await,
        Some(200),
        "the open connection keeps going"
    );

    // A broken renewal keeps B; the next good one is served.
    replace(&cert, "-----BEGIN CERTIFICATE-----\nnot a certificate\n");
    replace(&key, &c_key);
    replace(&cert, &c_pem);
    serves(c.clone(), vec![b.clone(), c.clone()]).await;
    within(gw.shutdown()).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// A CA and client certificates it signs.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "test client CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { ca }
    }

    /// A client certificate with subject CN `cn` and DNS SAN `san`.
    fn client(&self, cn: &str, san: &str) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![san.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], der)
    }
}

fn mtls_yaml(
    dir: &Path,
    pki: &Pki,
    mode: &str,
    tenants: &str,
) -> (String, CertificateDer<'static>) {
    let (pem, key, der) = server_cert();
    let (cert_file, key_file, ca_file) = (dir.join("s.crt"), dir.join("s.key"), dir.join("ca.crt"));
    std::fs::write(&cert_file, pem).unwrap();
    std::fs::write(&key_file, key).unwrap();
    std::fs::write(&ca_file, pki.ca.pem()).unwrap();
    let yaml = format!(
        "server:\n  tls: {{ cert_file: \"{}\", key_file: \"{}\", client_ca_file: \"{}\", client_auth: {mode} }}\n\
         clouds: {{ c: {{ provider: private }} }}\n\
         models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}, {{ name: n, versions: [{{ name: v1, weight: 100 }}] }}]\n\
         replicas: [{{ id: r, model: m, cloud: c, url: \"${{R_URL}}\" }}, {{ id: s, model: n, cloud: c, url: \"${{R_URL}}\" }}]\n\
         {tenants}",
        cert_file.display(),
        key_file.display(),
        ca_file.display()
    );
    (yaml, der)
}

#[tokio::test]
async fn verified_client_certificates_authenticate_as_their_tenant() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let dir = temp_dir("mtls-optional");
    let pki = Pki::new();
    let tenants = "tenants:\n\
                   - { name: svc, client_cert_names: [svc-a.internal], models: [m] }\n\
                   - { name: app, keys: [{ id: k, key: app-key }] }\n";
    let (yaml, server) = mtls_yaml(&dir, &pki, "optional", tenants);
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    let addr = gw.data_addr;
    let svc_a = || Some(pki.client("svc-a", "svc-a.internal"));

    // Mapped by its DNS SAN: the tenant's models apply (n is not among them).
    let tls = connect(addr, &[&server], svc_a()).await.unwrap();
    assert_eq!(post(tls, "m", None).await, Some(200));
    let tls = connect(addr, &[&server], svc_a()).await.unwrap();
    assert_eq!(post(tls, "n", None).await, Some(403));
    // A key, when sent, decides.
    let tls = connect(addr, &[&server], svc_a()).await.unwrap();
    assert_eq!(post(tls, "n", Some("app-key")).await, Some(200));
    // A valid certificate no tenant names, or none at all (optional): a key is needed.
    let other = Some(pki.client("svc-z", "svc-z.internal"));
    let tls = connect(addr, &[&server], other).await.unwrap();
    assert_eq!(post(tls, "m", None).await, Some(401));
    let tls = connect(addr, &[&server], None).await.unwrap();
    assert_eq!(post(tls, "m", None).await, Some(401));
    let tls = connect(addr, &[&server], None).await.unwrap();
    assert_eq!(post(tls, "m", Some("app-key")).await, Some(200));
    // A certificate from another CA is refused.
    let stranger = Pki::new().client("svc-a", "svc-a.internal");
    let refused = match connect(addr, &[&server], Some(stranger)).await {
        Ok(tls) => post(tls, "m", None).await,
        Err(_) => None,
    };
    assert_eq!(refused, None);
    within(gw.shutdown()).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn required_client_certificates_refuse_clients_without_one() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let dir = temp_dir("mtls-required");
    let pki = Pki::new();
    let tenants = "tenants:\n  - { name: svc, client_cert_names: [svc-b], models: [m] }\n";
    let (yaml, server) = mtls_yaml(&dir, &pki, "required", tenants);
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    // Mapped by its subject CN.
    let tls = connect(
        gw.data_addr,
        &[&server],
        Some(pki.client("svc-b", "b.internal")),
    )
    .await
    .unwrap();
    assert_eq!(post(tls, "m", None).await, Some(200));
    let without = match connect(gw.data_addr, &[&server], None).await {
        Ok(tls) => post(tls, "m", None).await,
        Err(_) => None,
    };
    assert_eq!(without, None, "no client certificate: no HTTP answer");
    within(gw.shutdown()).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
