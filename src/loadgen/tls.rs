//! Client TLS for `https://` targets: one rustls `ClientConfig` per protocol (ALPN `http/1.1`,
//! `h2` or `h3`) on the process's ring provider (the one hearth's listeners use), trusting the
//! PEM certificates of `--ca-cert`, or with `--insecure` any certificate (a dev certificate;
//! handshake signatures are still checked).

use anyhow::{Context, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;

/// Who the client trusts.
#[derive(Clone, Debug)]
pub enum Trust {
    /// The certificates in this PEM file.
    CaFile(std::path::PathBuf),
    /// Any certificate (`--insecure`).
    Any,
}

impl Trust {
    /// From the `--ca-cert` and `--insecure` flags (exactly one for an `https://` target).
    pub fn from_flags(ca_cert: Option<&Path>, insecure: bool) -> anyhow::Result<Trust> {
        match (ca_cert, insecure) {
            (Some(p), false) => Ok(Trust::CaFile(p.to_path_buf())),
            (None, true) => Ok(Trust::Any),
            (Some(_), true) => bail!("give one of --ca-cert and --insecure, not both"),
            (None, false) => {
                bail!(
                    "an https:// target needs --ca-cert PEM (or --insecure for a dev certificate)"
                )
            }
        }
    }
}

/// A client config offering `alpn`.
pub fn client_config(trust: &Trust, alpn: &[u8]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = crate::router::tls::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match trust {
        Trust::CaFile(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("--ca-cert {}", path.display()))?;
            for c in certs {
                let c = c.with_context(|| format!("--ca-cert {}", path.display()))?;
                roots
                    .add(c)
                    .with_context(|| format!("--ca-cert {}", path.display()))?;
            }
            if roots.is_empty() {
                bail!("--ca-cert {}: no certificate in the file", path.display());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Any => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// The name to verify the certificate against (and send as SNI): the URL's host.
pub fn server_name(host: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .with_context(|| format!("{host:?} is not a valid TLS server name"))
}

/// `--insecure`: accepts any certificate chain, but still checks the handshake signatures.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
