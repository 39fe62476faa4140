//! Code packages: zip validation (untrusted input), the local code store (zips by SHA-256),
//! and the node cache of extracted packages.
//!
//! Every zip is walked once by [`zipcheck`], which applies all the rules while it inflates;
//! validation walks into a sink that discards bytes, extraction into one that writes files
//! ([`extract`]), so the two can never disagree about what is allowed.

use std::path::{Path, PathBuf};

mod cache;
mod extract;
pub mod http;
pub mod lru;
mod pack;
mod store;
mod zipcheck;

#[cfg(test)]
mod tests;

pub use cache::is_sha256_hex;

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
///
/// Refuses: more than `max_zipped` bytes; anything that is not a well-formed zip (including
/// local headers that disagree with the central directory); encrypted entries or compression
/// other than stored/deflate; names that are absolute, contain `..`, a backslash or NUL, a
/// component over 255 bytes or a path over 1024 bytes; symlinks and every other entry that is
/// neither a regular file nor a directory; duplicate names (after dropping `./` and trailing
/// `/`); a file that is also used as a directory; more than `max_entries` entries, or paths that
/// make more than twice that many files and directories (counting implied parents); more than `max_unpacked` inflated bytes (counted while
/// inflating, declared sizes are not trusted); a size that differs from the declared one; and,
/// when `require_bootstrap`, a package without a regular file `bootstrap` at its root.
pub fn validate_zip(
    bytes: &[u8],
    limits: &ZipLimits,
    require_bootstrap: bool,
) -> Result<ZipSummary, ZipError> {
    zipcheck::walk(bytes, limits, require_bootstrap, &mut zipcheck::Discard)
}

/// Extracts a zip into `dest` (created), re-checking every rule; files 0755 when the zip marks
/// them executable, else 0644; directories 0755.
///
/// `dest` must not exist (its parent is created when missing) or be an empty directory.
/// A file named `bootstrap` at the root is always 0755. Files are created with `O_EXCL` and
/// never through a symlink. On any error everything written so far is removed (and `dest`
/// too when this call created it).
pub fn extract_zip(bytes: &[u8], dest: &Path, limits: &ZipLimits) -> Result<ZipSummary, ZipError> {
    extract::extract(bytes, dest, limits)
}

/// Zips a directory (client side of `--code DIR`), keeping the executable bit.
///
/// Entries are relative, `/`-separated and sorted by name, compressed with deflate and dated
/// 1980-01-01, so the same tree always gives the same bytes (and the same SHA-256). Files keep
/// their permission bits; directories are stored as 0755. Symlinks are followed (like `zip -r`);
/// a symlink loop, a name that is not UTF-8 or a special file (fifo, socket, device) is an error.
pub fn zip_dir(dir: &Path) -> std::io::Result<Vec<u8>> {
    pack::zip_dir(dir)
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
    /// Idempotent: a zip that is already stored is not written again.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        store::put(&self.dir, bytes)
    }
    pub fn get(&self, sha256_hex: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(sha256_hex))
    }
    pub fn path(&self, sha256_hex: &str) -> PathBuf {
        self.dir.join(format!("{sha256_hex}.zip"))
    }
    /// Removes temp files left by a process that died inside [`Self::put`]; returns how many.
    /// Call at start, before anything else writes into the store.
    pub fn remove_leftovers(&self) -> std::io::Result<usize> {
        store::remove_leftovers(&self.dir)
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
    ///
    /// The zip read from the store must hash to `sha256_hex` and pass every rule again. If
    /// another caller finishes the same package first, this caller's copy is dropped and both
    /// get the same path.
    pub fn ensure(
        &self,
        store: &LocalCodeStore,
        sha256_hex: &str,
        limits: &ZipLimits,
    ) -> Result<PathBuf, ZipError> {
        cache::ensure(&self.dir, store, sha256_hex, limits)
    }
    /// Removes half-extracted temp trees left by a process that died inside [`Self::ensure`];
    /// returns how many. Call at start, before any `ensure`.
    pub fn remove_leftovers(&self) -> std::io::Result<usize> {
        store::remove_leftovers(&self.dir)
    }
}
