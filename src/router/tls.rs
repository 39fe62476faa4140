//! TLS on the public API: rustls with the ring provider (the one crypto provider of the
//! process, shared with QUIC), ALPN `h2` and `http/1.1` into the same hyper-util server as the
//! plain listener. Certificates live behind a reloadable resolver ([`Certs`]) that the TCP and
//! QUIC configs share: a reload (SIGHUP or a changed file) serves new handshakes with the new
//! certificate while open connections keep theirs.

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the certificate files' modification times are checked.
const POLL: Duration = Duration::from_secs(1);

/// The process's crypto provider (ring), installed as the default once so hyper, rustls and
/// quinn never pick another.
pub fn provider() -> Arc<CryptoProvider> {
    if let Some(p) = CryptoProvider::get_default() {
        return p.clone();
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .expect("a crypto provider was just installed")
        .clone()
}

/// The serving certificate, reloadable from its PEM files.
#[derive(Debug)]
pub struct Certs {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certs {
    /// Loads the certificate chain and key (PEM) and checks that they match.
    pub fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> anyhow::Result<Certs> {
        let current = load_pair(cert, key, &provider)?;
        Ok(Certs {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again; on error the current certificate stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = load_pair(&self.cert, &self.key, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        tracing::info!(sha256 = %self.fingerprint(), "TLS certificate loaded");
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// SHA-256 of the end-entity certificate (DER), lowercase hex.
    pub fn fingerprint(&self) -> String {
        self.current()
            .cert
            .first()
            .map(|c| fingerprint(c))
            .unwrap_or_default()
    }

    fn mtimes(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (m(&self.cert), m(&self.key))
    }

    /// Reloads on SIGHUP and whenever a file's modification time changes, until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler; reloading on file change only");
                None
            }
        };
        tokio::pin!(shutdown);
        let mut seen = self.mtimes();
        loop {
            let forced = tokio::select! {
                _ = &mut shutdown => return,
                Some(()) = async { hup.as_mut()?.recv().await } => true,
                _ = tokio::time::sleep(POLL) => false,
            };
            let now = self.mtimes();
            if !forced && now == seen {
                continue;
            }
            seen = now;
            if let Err(e) = self.reload() {
                tracing::error!(error = %format!("{e:#}"), "TLS certificate reload failed; keeping the current one");
            }
        }
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    use anyhow::Context;
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{}: no certificate", cert.display());
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading a private key from {}", key.display()))?;
    CertifiedKey::from_der(chain, key_der, provider)
        .with_context(|| format!("{} and {}", cert.display(), key.display()))
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(der))
}

/// The development certificate in `<data_dir>/tls/`: made once (self-signed, SANs localhost,
/// 127.0.0.1 and ::1) and reused afterwards. Returns (cert, key) paths.
pub fn dev_cert(data_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("dev-cert.pem"), dir.join("dev-key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir)?;
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let made = rcgen::generate_simple_self_signed(names)?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    let tmp = cert.with_extension("tmp");
    std::fs::write(&tmp, made.cert.pem())?;
    std::fs::rename(&tmp, &cert)?;
    tracing::info!(cert = %cert.display(), "development TLS certificate created");
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A rustls server config resolving certificates through `certs`, offering `alpn`.
pub fn server_config(
    certs: Arc<Certs>,
    provider: Arc<CryptoProvider>,
    alpn: &[&[u8]],
) -> anyhow::Result<rustls::ServerConfig> {
    let mut c = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(c)
}

/// `Alt-Svc` advertising HTTP/3 on `port`.
pub fn alt_svc(port: u16) -> HeaderValue {
    HeaderValue::from_str(&format!("h3=\":{port}\"; ma=86400")).expect("a valid header value")
}

/// Serves TLS connections (h2 or HTTP/1.1 by ALPN) until `shutdown` resolves, then stops
/// accepting and lets open connections finish their in-flight requests. Failed handshakes
/// (garbage, no shared ALPN or cipher) drop only their connection.
pub async fn serve<S, F>(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    alt_svc: HeaderValue,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = super::http::builder();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (service, alt_svc) = (service.clone(), alt_svc.clone());
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(super::http::RemoteAddr(peer));
            let fut = service(req);
            let alt_svc = alt_svc.clone();
            async move {
                let mut resp = fut.await;
                resp.headers_mut().insert(http::header::ALT_SVC, alt_svc);
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let (acceptor, builder, watcher) = (acceptor.clone(), builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            let conn = builder.serve_connection(TokioIo::new(tls), svc);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
