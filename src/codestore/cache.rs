//! `NodeCache::ensure`: extract once, publish with a rename, never show half a tree.

use std::fs;
use std::path::{Path, PathBuf};

use super::{LocalCodeStore, ZipError, ZipLimits, extract_zip, lru::CodeSource, sha256_hex};

/// Whether `s` is a lower-case hex SHA-256 (and so safe as a file name).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(super) fn ensure(
    dir: &Path,
    store: &LocalCodeStore,
    sha: &str,
    limits: &ZipLimits,
) -> Result<PathBuf, ZipError> {
    ensure_from(dir, store, sha, limits)
}

/// [`ensure`] from any [`CodeSource`].
pub(super) fn ensure_from(
    dir: &Path,
    store: &dyn CodeSource,
    sha: &str,
    limits: &ZipLimits,
) -> Result<PathBuf, ZipError> {
    if !is_sha256_hex(sha) {
        return Err(ZipError(format!("{sha:?} is not a lower-case hex SHA-256")));
    }
    let dest = dir.join(sha);
    if dest.is_dir() {
        return Ok(dest);
    }
    let bytes = store.fetch(sha).map_err(|e| {
        ZipError(format!(
            "code package {sha} cannot be read from the code store: {e}"
        ))
    })?;
    if sha256_hex(&bytes) != sha {
        return Err(ZipError(format!(
            "code package {sha} in the code store does not match its SHA-256"
        )));
    }
    // Not synced: this is a cache. After a host crash, discard the whole cache directory.
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    extract_zip(&bytes, &tmp, limits)?;
    match fs::rename(&tmp, &dest) {
        Ok(()) => Ok(dest),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            if dest.is_dir() {
                Ok(dest) // another caller won the race; its tree is the same
            } else {
                Err(ZipError(format!(
                    "cannot publish code package {sha} in the node cache: {e}"
                )))
            }
        }
    }
}
