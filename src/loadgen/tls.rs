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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_flags_and_configs() {
        let pem = std::path::Path::new("x.pem");
        assert!(matches!(
            Trust::from_flags(Some(pem), false),
            Ok(Trust::CaFile(_))
        ));
        assert!(matches!(Trust::from_flags(None, true), Ok(Trust::Any)));
        let both = Trust::from_flags(Some(pem), true).unwrap_err().to_string();
        assert!(both.contains("not both"), "{both}");
        let none = Trust::from_flags(None, false).unwrap_err().to_string();
        assert!(none.contains("--ca-cert"), "{none}");

        let c = client_config(&Trust::Any, b"h3").unwrap();
        assert_eq!(c.alpn_protocols, vec![b"h3".to_vec()]);
        let dir = tempfile::tempdir().unwrap();
        let missing = client_config(&Trust::CaFile(dir.path().join("no.pem")), b"h2");
        assert!(missing.unwrap_err().to_string().contains("no.pem"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(&Trust::CaFile(empty), b"h2").unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let good = dir.path().join("good.pem");
        std::fs::write(&good, made.cert.pem()).unwrap();
        assert!(client_config(&Trust::CaFile(good), b"http/1.1").is_ok());

        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("localhost").is_ok());
        assert!(server_name("bad host").is_err());
    }
}
