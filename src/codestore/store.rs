//! `LocalCodeStore::put`: content-addressed, durable, idempotent.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::sha256_hex;

pub(super) fn put(dir: &Path, bytes: &[u8]) -> io::Result<String> {
    let sha = sha256_hex(bytes);
    let dest = dir.join(format!("{sha}.zip"));
    if dest.exists() {
        return Ok(sha); // same name, same bytes
    }
    let tmp = dir.join(format!(".tmp-{}.zip", uuid::Uuid::new_v4().simple()));
    if let Err(e) = write_synced(&tmp, bytes).and_then(|()| fs::rename(&tmp, &dest)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable.
    File::open(dir)?.sync_all()?;
    Ok(sha)
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Removes `.tmp-*` files or directories left in `dir` by a process that died mid-write.
/// Only safe while nothing else writes into `dir`.
pub(super) fn remove_leftovers(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
        removed += 1;
    }
    Ok(removed)
}
