//! [`CodeSource`] over HTTP: `hearth agent` fetches packages from the router or control
//! service (`GET {base}/hearth/v1/code/{sha}.zip`) and checks what it got against the hash.
//!
//! The trait is synchronous because its one caller, the node cache ([`super::lru::Lru`]),
//! runs on a blocking thread (`spawn_blocking`) where it also extracts the zip; a small
//! blocking client (ureq) fits that without a runtime handle.

use super::lru::CodeSource;
use std::io;
use std::time::Duration;

/// Downloads packages by SHA-256 from a hearth code endpoint.
pub struct HttpCodeSource {
    base: String,
    max_bytes: u64,
    http: ureq::Agent,
}

impl HttpCodeSource {
    /// `base` is `http://HOST:PORT`; downloads over `max_bytes` or slower than `timeout` fail.
    pub fn new(base: &str, max_bytes: u64, timeout: Duration) -> HttpCodeSource {
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .build()
            .into();
        HttpCodeSource {
            base: base.trim_end_matches('/').to_string(),
            max_bytes,
            http,
        }
    }
}

impl CodeSource for HttpCodeSource {
    fn fetch(&self, sha256_hex: &str) -> io::Result<Vec<u8>> {
        if !super::is_sha256_hex(sha256_hex) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{sha256_hex:?} is not a SHA-256"),
            ));
        }
        let url = format!("{}/hearth/v1/code/{sha256_hex}.zip", self.base);
        let resp = self
            .http
            .get(&url)
            .call()
            .map_err(|e| io::Error::other(format!("GET {url}: {e}")))?;
        match resp.status().as_u16() {
            200 => {}
            404 => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("GET {url}: no such code package"),
                ));
            }
            s => return Err(io::Error::other(format!("GET {url}: HTTP {s}"))),
        }
        let bytes = resp
            .into_body()
            .with_config()
            .limit(self.max_bytes)
            .read_to_vec()
            .map_err(|e| io::Error::other(format!("GET {url}: {e}")))?;
        let got = super::sha256_hex(&bytes);
        if got != sha256_hex {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("GET {url}: content has SHA-256 {got}"),
            ));
        }
        Ok(bytes)
    }
}
