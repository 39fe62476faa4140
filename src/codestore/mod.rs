//! Code packages: zip validation (untrusted input), the local code store (zips by SHA-256),
//! and the node cache of extracted packages.

use std::path::{Path, PathBuf};

/// Limits applied to every uploaded zip.
#[derive(Debug, Clone, Copy)]
pub struct ZipLimits {
    /// Largest zip accepted, in bytes (Lambda: 50 MB).
    pub max_zipped: u64,
    /// Largest total of inflated bytes (Lambda: 250 MB). Counted while inflating.
    pub max_unpacked: u64,
    /// Most entries (files and directories).
    pub max_entries: usize,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_zipped: 50 * 1024 * 1024,
            max_unpacked: 250 * 1024 * 1024,
            max_entries: 20_000,
        }
    }
}

/// A zip was refused. The message names the problem and is shown to the user
/// (400 InvalidParameterValueException).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ZipError(pub String);

/// What validation learned about a zip.
#[derive(Debug, Clone)]
pub struct ZipSummary {
    pub entries: usize,
    pub unpacked_bytes: u64,
    pub has_bootstrap: bool,
}

/// Validates a zip fully (inflating every entry, counting real bytes).
pub fn validate_zip(bytes: &[u8], limits: &ZipLimits, require_bootstrap: bool) -> Result<ZipSummary, ZipError> {
    let _ = (bytes, limits, require_bootstrap);
    unimplemented!("codestore")
}

/// Extracts a zip into `dest` (created), re-checking every rule; files 0755 when the zip marks
/// them executable, else 0644; directories 0755.
pub fn extract_zip(bytes: &[u8], dest: &Path, limits: &ZipLimits) -> Result<ZipSummary, ZipError> {
    let _ = (bytes, dest, limits);
    unimplemented!("codestore")
}

/// Zips a directory (client side of `--code DIR`), keeping the executable bit.
pub fn zip_dir(dir: &Path) -> std::io::Result<Vec<u8>> {
    let _ = dir;
    unimplemented!("codestore")
}

/// SHA-256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Zips by SHA-256 under `<data>/code/<sha256>.zip`.
#[derive(Debug, Clone)]
pub struct LocalCodeStore {
    dir: PathBuf,
}

impl LocalCodeStore {
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(LocalCodeStore { dir })
    }
    /// Stores the zip (write to a temp file, fsync, rename); returns its hex SHA-256.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let _ = bytes;
        unimplemented!("codestore")
    }
    pub fn get(&self, sha256_hex: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(sha256_hex))
    }
    pub fn path(&self, sha256_hex: &str) -> PathBuf {
        self.dir.join(format!("{sha256_hex}.zip"))
    }
}

/// Extracted packages under `<data>/cache/<sha256>/`, filled from the code store.
#[derive(Debug, Clone)]
pub struct NodeCache {
    dir: PathBuf,
}

impl NodeCache {
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(NodeCache { dir })
    }
    /// Returns the extracted directory of a package, extracting it first when missing
    /// (into a temp dir, then rename, so concurrent callers never see half a tree).
    pub fn ensure(&self, store: &LocalCodeStore, sha256_hex: &str, limits: &ZipLimits) -> Result<PathBuf, ZipError> {
        let _ = (store, sha256_hex, limits, &self.dir);
        unimplemented!("codestore")
    }
}
