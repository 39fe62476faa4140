//! Extraction: the walk of [`super::zipcheck`] into a sink that writes files, removing
//! everything it wrote when any rule fails.
//!
//! Safety of the paths: the walk hands over only normalised relative names, creates every
//! directory itself (each exactly once, parents first, with `mkdir`, which never follows a
//! symlink at its last component), and creates files with `O_CREAT | O_EXCL | O_NOFOLLOW`. So
//! nothing is ever written through a symlink, and nothing outside `dest`, unless another
//! process changes the tree under us while we write it, which only hearth does.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::zipcheck::{self, Sink};
use super::{ZipError, ZipLimits, ZipSummary};

pub(super) fn extract(
    bytes: &[u8],
    dest: &Path,
    limits: &ZipLimits,
) -> Result<ZipSummary, ZipError> {
    let mut out = Extractor::prepare(dest)?;
    match zipcheck::walk(bytes, limits, false, &mut out) {
        Ok(summary) => Ok(summary),
        Err(e) => {
            out.roll_back();
            Err(e)
        }
    }
}

struct Extractor {
    root: PathBuf,
    /// Whether `root` was made by us (then a failure removes it too).
    made_root: bool,
    /// What we created, in order: (path, is a directory).
    created: Vec<(PathBuf, bool)>,
}

fn io_error(what: &str, path: &Path, e: io::Error) -> ZipError {
    ZipError(format!("cannot {what} {}: {e}", path.display()))
}

impl Extractor {
    fn prepare(root: &Path) -> Result<Self, ZipError> {
        let made_root = match fs::symlink_metadata(root) {
            Ok(meta) if meta.is_dir() => {
                let mut listing = fs::read_dir(root).map_err(|e| io_error("read", root, e))?;
                if listing.next().is_some() {
                    return Err(ZipError(format!(
                        "cannot extract into {}: not empty",
                        root.display()
                    )));
                }
                false
            }
            Ok(_) => {
                return Err(ZipError(format!(
                    "cannot extract into {}: not a directory",
                    root.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = root.parent() {
                    fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
                }
                make_dir(root)?;
                true
            }
            Err(e) => return Err(io_error("inspect", root, e)),
        };
        Ok(Extractor {
            root: root.to_owned(),
            made_root,
            created: Vec::new(),
        })
    }

    /// Removes what this extraction wrote, newest first; best effort (we are already failing).
    fn roll_back(self) {
        for (path, is_dir) in self.created.iter().rev() {
            let _ = if *is_dir {
                fs::remove_dir(path)
            } else {
                fs::remove_file(path)
            };
        }
        if self.made_root {
            let _ = fs::remove_dir(&self.root);
        }
    }
}

/// `mkdir` with mode 0755, then `chmod` so the umask cannot narrow it.
fn make_dir(path: &Path) -> Result<(), ZipError> {
    DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| io_error("create directory", path, e))?;
    fs::set_permissions(path, Permissions::from_mode(0o755))
        .map_err(|e| io_error("set the mode of", path, e))
}

impl Sink for Extractor {
    fn dir(&mut self, name: &str) -> Result<(), ZipError> {
        let path = self.root.join(name);
        make_dir(&path)?;
        self.created.push((path, true));
        Ok(())
    }

    fn file(&mut self, name: &str, executable: bool) -> Result<Box<dyn Write>, ZipError> {
        let path = self.root.join(name);
        let mode = if executable { 0o755 } else { 0o644 };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| io_error("create", &path, e))?;
        self.created.push((path.clone(), false));
        // Owned by the user we run as (root); fchmod so the umask cannot narrow the mode.
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| io_error("set the mode of", &path, e))?;
        Ok(Box::new(file))
    }
}
