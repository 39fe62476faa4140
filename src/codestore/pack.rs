//! `zip_dir`: the client side of `--code DIR`, deterministic so the same tree gives the same
//! SHA-256.

use std::fs::{self, File};
use std::io::{self, Cursor};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

type Writer = ZipWriter<Cursor<Vec<u8>>>;

pub(super) fn zip_dir(dir: &Path) -> io::Result<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let root = fs::metadata(dir)?;
    let mut ancestors = vec![(root.dev(), root.ino())];
    add_children(&mut zip, dir, "", &mut ancestors)?;
    Ok(zip.finish()?.into_inner())
}

fn options(mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(mode & 0o777)
}

/// Adds the contents of `dir`, sorted by name, under `prefix` (empty or ending in `/`).
/// `ancestors` holds the (device, inode) of every directory being walked, to stop symlink loops.
fn add_children(
    zip: &mut Writer,
    dir: &Path,
    prefix: &str,
    ancestors: &mut Vec<(u64, u64)>,
) -> io::Result<()> {
    let mut names = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let Some(name) = name.to_str() else {
            let msg = format!("{}: file name is not UTF-8", path.display());
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        };
        let entry = format!("{prefix}{name}");
        let meta = fs::metadata(&path)?; // follows symlinks, as `zip -r` does
        if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if ancestors.contains(&id) {
                let msg = format!("{}: symlink loop", path.display());
                return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
            }
            zip.add_directory(format!("{entry}/"), options(0o755))?;
            ancestors.push(id);
            add_children(zip, &path, &format!("{entry}/"), ancestors)?;
            ancestors.pop();
        } else if meta.is_file() {
            let opts =
                options(meta.permissions().mode()).large_file(meta.len() >= u64::from(u32::MAX));
            zip.start_file(entry, opts)?;
            io::copy(&mut File::open(&path)?, zip)?;
        } else {
            let msg = format!("{}: not a regular file or directory", path.display());
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
    }
    Ok(())
}
