//! TLS on the data listener (`server.tls`): a rustls acceptor, ALPN `h2`
//! then `http/1.1`, optionally verifying client certificates
//! (`client_ca_file`, `client_auth: required | optional`).
//!
//! The certificate comes from a resolver holding an `ArcSwap`, so it can
//! change under a live acceptor, from two directions; the newest wins:
//! - a config generation with another certificate (a reload re-reads the
//!   files): seen by the accept loop, which asks for the acceptor of the
//!   serving snapshot on every new connection;
//! - the files changing on disk with no config change (a renewal by
//!   cert-manager, certbot or a Kubernetes secret): a `notify` watch on
//!   their directories reads the pair again, checked as the loader does
//!   ([`ServerTls::reload_key`]); a pair that does not load (a half-written
//!   renewal) keeps the old certificate and is logged.
//!
//! Connections accepted after a change get the new certificate; open ones
//! keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use switchyard_config::ServerTls;
use tokio_rustls::TlsAcceptor;

/// The acceptor for the serving config's TLS settings.
#[derive(Default)]
pub struct Acceptors {
    current: Option<Current>,
}

struct Current {
    /// The certificate the config generation held when last seen.
    config_key: Arc<CertifiedKey>,
    /// The client verifier it was built with.
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    files: (PathBuf, PathBuf),
    cert: Arc<Resolver>,
    acceptor: TlsAcceptor,
    /// Dropped with this value: the watch stops.
    _watch: Option<notify::RecommendedWatcher>,
}

impl Acceptors {
    /// The acceptor for `tls`; `None` for plain HTTP.
    pub fn for_config(
        &mut self,
        tls: Option<&ServerTls>,
    ) -> Result<Option<TlsAcceptor>, rustls::Error> {
        let Some(tls) = tls else {
            self.current = None;
            return Ok(None);
        };
        let verifier = tls.client.as_ref().map(|c| Arc::clone(&c.verifier));
        let files = (tls.cert_file.clone(), tls.key_file.clone());
        if let Some(c) = &mut self.current
            && c.files == files
        {
            if !Arc::ptr_eq(&c.config_key, &tls.certified) {
                // A new generation read the files again: its pair is the newest.
                c.config_key = Arc::clone(&tls.certified);
                c.cert.0.store(Arc::clone(&tls.certified));
            }
            if !same_verifier(c.verifier.as_ref(), verifier.as_ref()) {
                c.acceptor = acceptor(Arc::clone(&c.cert), verifier.clone())?;
                c.verifier = verifier;
            }
            return Ok(Some(c.acceptor.clone()));
        }
        let cert = Arc::new(Resolver(ArcSwap::new(Arc::clone(&tls.certified))));
        let acceptor = acceptor(Arc::clone(&cert), verifier.clone())?;
        let watch = watch(tls, Arc::clone(&cert))
            .inspect_err(|e| {
                tracing::warn!(error = %e, "cannot watch the TLS certificate files; they are re-read on a config reload only");
            })
            .ok();
        // Each data-plane worker builds its acceptor on its first
        // connection, maybe long after the config was loaded: the files
        // may have been renewed since (the other workers' watches saw it,
        // this one was not watching yet). Read them as they are now, after
        // the watch started so no later change is missed.
        reload(tls, &cert);
        self.current = Some(Current {
            config_key: Arc::clone(&tls.certified),
            verifier,
            files,
            cert,
            acceptor: acceptor.clone(),
            _watch: watch,
        });
        Ok(Some(acceptor))
    }
}

fn same_verifier(
    a: Option<&Arc<dyn ClientCertVerifier>>,
    b: Option<&Arc<dyn ClientCertVerifier>>,
) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// A rustls server config (ring, TLS 1.2 and 1.3) serving `cert`'s
/// current certificate, verifying client certificates with `verifier`.
fn acceptor(
    cert: Arc<Resolver>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<TlsAcceptor, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One certificate for every client hello (no SNI selection), swappable.
#[derive(Debug)]
struct Resolver(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// Watches the directories of `tls`'s files (a rename over a file, or a
/// Kubernetes `..data` symlink swap, replaces the inode a file watch would
/// hold) and loads the pair again on any event naming one of them.
fn watch(tls: &ServerTls, cert: Arc<Resolver>) -> notify::Result<notify::RecommendedWatcher> {
    let tls = tls.clone();
    let names: Vec<std::ffi::OsString> = [&tls.cert_file, &tls.key_file]
        .iter()
        .filter_map(|p| p.file_name().map(ToOwned::to_owned))
        .collect();
    let dirs: Vec<PathBuf> = [&tls.cert_file, &tls.key_file]
        .iter()
        .map(|p| dir_of(p))
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let ours = event.paths.iter().any(|p| {
            p.file_name().is_some_and(|n| {
                names.iter().any(|m| m == n) || n.to_string_lossy().starts_with("..")
            })
        });
        if ours {
            reload(&tls, &cert);
        }
    })?;
    for dir in dirs {
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

/// Loads the pair again; keeps the old one when it does not load.
fn reload(tls: &ServerTls, cert: &Resolver) {
    match tls.reload_key() {
        Ok(key) if key.cert != cert.0.load().cert => {
            cert.0.store(key);
            tracing::info!(cert_file = %tls.cert_file.display(), "TLS certificate reloaded from disk");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(
            error = %e,
            "TLS certificate files changed but do not load; still serving the previous certificate"
        ),
    }
}

fn dir_of(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
