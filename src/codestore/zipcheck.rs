//! The rules every zip must pass, applied in one walk over its entries.
//!
//! The walk hands each accepted entry to a [`Sink`]: [`Discard`] for validation, the extractor
//! for extraction. Parents are announced before their contents, each directory exactly once.

use std::collections::HashMap;
use std::io::{self, Cursor, Read, Write};

use zip::read::{Config, ZipFileEntry};
use zip::unstable::read::ZipIterable;
use zip::{CompressionMethod, ZipReadOptions};

use super::{ZipError, ZipLimits, ZipSummary};

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Longest path accepted, in bytes: far below PATH_MAX even under a deep cache directory, so
/// a zip that validates also extracts.
pub(super) const MAX_PATH: usize = 1024;
/// Longest single name component (NAME_MAX on Linux).
pub(super) const MAX_COMPONENT: usize = 255;

/// Where accepted entries go. `name` is normalised: relative, `/`-separated, no `.`.
pub(super) trait Sink {
    fn dir(&mut self, name: &str) -> Result<(), ZipError>;
    fn file(&mut self, name: &str, executable: bool) -> Result<Box<dyn Write>, ZipError>;
}

/// Validation: accept everything, keep nothing.
pub(super) struct Discard;

impl Sink for Discard {
    fn dir(&mut self, _name: &str) -> Result<(), ZipError> {
        Ok(())
    }
    fn file(&mut self, _name: &str, _executable: bool) -> Result<Box<dyn Write>, ZipError> {
        Ok(Box::new(io::sink()))
    }
}

/// What an entry becomes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File { executable: bool },
}

/// An entry's name as the zip spells it (for messages) and normalised (for the disk).
struct EntryName {
    shown: String,
    path: String,
}

fn refuse(message: String) -> ZipError {
    ZipError(message)
}

/// Walks the whole zip, applying every rule, and feeds accepted entries to `sink`.
pub(super) fn walk(
    bytes: &[u8],
    limits: &ZipLimits,
    require_bootstrap: bool,
    sink: &mut dyn Sink,
) -> Result<ZipSummary, ZipError> {
    if bytes.len() as u64 > limits.max_zipped {
        return Err(refuse(format!(
            "the zip is {} bytes, more than the limit of {} bytes",
            bytes.len(),
            limits.max_zipped
        )));
    }
    // ZipIterable reads the central directory one entry at a time, so a huge declared entry
    // count costs nothing before it is refused, and it keeps entries that share a name (which
    // ZipArchive would silently merge). It is in `zip::unstable`, hence the exact version pin.
    let mut archive = ZipIterable::try_new(Cursor::new(bytes), Config::default())
        .map_err(|e| refuse(format!("not a valid zip file: {e}")))?
        .enforce_header_consistency(true);
    if archive.len() > limits.max_entries {
        return Err(too_many_entries(limits));
    }
    let mut body = Cursor::new(bytes);
    let mut tree = Tree::default();
    let mut summary = ZipSummary {
        entries: 0,
        unpacked_bytes: 0,
        has_bootstrap: false,
    };
    let entries = archive
        .files()
        .map_err(|e| refuse(format!("the zip is corrupt: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| refuse(format!("the zip is corrupt: {e}")))?;
        summary.entries += 1;
        walk_entry(entry, &mut body, limits, &mut tree, &mut summary, sink)?;
    }
    // A `bootstrap` without execute bits is accepted: extraction makes it 0755 regardless,
    // as zips made on Windows or by some tools carry no unix mode at all.
    if require_bootstrap && !summary.has_bootstrap {
        return Err(refuse(
            "the package has no executable \"bootstrap\" at its root (required for runtime provided)"
                .to_owned(),
        ));
    }
    Ok(summary)
}

fn too_many_entries(limits: &ZipLimits) -> ZipError {
    refuse(format!(
        "the zip has more than {} entries",
        limits.max_entries
    ))
}

/// Files and directories on disk, counting the directories that paths only imply: bounded at
/// twice the entry limit, so memory and inodes stay bounded whatever the paths look like.
fn max_nodes(limits: &ZipLimits) -> usize {
    limits.max_entries.saturating_mul(2)
}

fn walk_entry(
    entry: ZipFileEntry<'static>,
    body: &mut Cursor<&[u8]>,
    limits: &ZipLimits,
    tree: &mut Tree,
    summary: &mut ZipSummary,
    sink: &mut dyn Sink,
) -> Result<(), ZipError> {
    let name = entry_name(&entry)?;
    let kind = entry_kind(&entry, &name)?;
    check_format(&entry, &name)?;
    tree.add(&name, kind, limits, sink)?;
    let Kind::File { executable } = kind else {
        // Directory contents are never read or written, so they need no counting.
        return Ok(());
    };
    if name.path == "bootstrap" {
        summary.has_bootstrap = true;
    }
    let declared = entry.size();
    let mut reader = entry
        .with_reader(body, ZipReadOptions::new())
        .map_err(|e| refuse(format!("zip entry {:?} cannot be read: {e}", name.shown)))?;
    let mut out = sink.file(&name.path, executable)?;
    let actual = copy_counted(&mut reader, &mut out, &name, summary, limits)?;
    if actual != declared {
        return Err(refuse(format!(
            "zip entry {:?} declares {declared} bytes but holds {actual}",
            name.shown
        )));
    }
    Ok(())
}

/// Copies an entry, counting inflated bytes against `max_unpacked` before each write, so a
/// zip bomb stops within one buffer of the limit.
fn copy_counted(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    name: &EntryName,
    summary: &mut ZipSummary,
    limits: &ZipLimits,
) -> Result<u64, ZipError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut copied = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(refuse(format!(
                    "zip entry {:?} is corrupt: {e}",
                    name.shown
                )));
            }
        };
        copied += n as u64;
        summary.unpacked_bytes += n as u64;
        if summary.unpacked_bytes > limits.max_unpacked {
            return Err(refuse(format!(
                "the zip unpacks to more than {} bytes (at entry {:?})",
                limits.max_unpacked, name.shown
            )));
        }
        out.write_all(&buf[..n])
            .map_err(|e| refuse(format!("cannot write zip entry {:?}: {e}", name.shown)))?;
    }
}

/// Checks the name and normalises it: drops empty and `.` components, refuses the rest.
fn entry_name(entry: &ZipFileEntry<'_>) -> Result<EntryName, ZipError> {
    let raw = entry.name_raw();
    let shown = entry
        .name()
        .map_err(|e| {
            refuse(format!(
                "zip entry {:?} has an unreadable name: {e}",
                String::from_utf8_lossy(raw)
            ))
        })?
        .into_owned();
    let bad = |what: &str| refuse(format!("zip entry {shown:?} {what}"));
    if raw.contains(&0) || shown.contains('\0') {
        return Err(bad("has a NUL byte in its name"));
    }
    if raw.contains(&b'\\') || shown.contains('\\') {
        return Err(bad("has a backslash in its name"));
    }
    if shown.starts_with('/') {
        return Err(bad("has an absolute path"));
    }
    let mut parts = Vec::new();
    for part in shown.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("has a path outside the package")),
            _ if part.len() > MAX_COMPONENT => {
                return Err(bad(&format!(
                    "has a name component longer than {MAX_COMPONENT} bytes"
                )));
            }
            _ => parts.push(part),
        }
    }
    let path = parts.join("/");
    if path.len() > MAX_PATH {
        return Err(bad(&format!("has a path longer than {MAX_PATH} bytes")));
    }
    Ok(EntryName { shown, path })
}

/// Directory or regular file, from the unix mode when the zip has one, else from the name.
fn entry_kind(entry: &ZipFileEntry<'_>, name: &EntryName) -> Result<Kind, ZipError> {
    let bad = |what: &str| refuse(format!("zip entry {:?} {what}", name.shown));
    let slash = name.shown.ends_with('/');
    let mode = entry.unix_mode().unwrap_or(0);
    let file_type = mode & S_IFMT;
    let is_dir = match file_type {
        // No type bits: many writers (Python's writestr, DOS zips) give only permissions.
        0 => slash,
        S_IFDIR => true,
        S_IFREG if slash => {
            return Err(bad("is marked as a regular file but named as a directory"));
        }
        S_IFREG => false,
        S_IFLNK => return Err(bad("is a symbolic link, which packages may not contain")),
        _ => return Err(bad("is neither a regular file nor a directory")),
    };
    if is_dir {
        if entry.size() != 0 {
            return Err(bad("is a directory with content"));
        }
        return Ok(Kind::Dir);
    }
    if name.path.is_empty() {
        return Err(bad("is a file without a name"));
    }
    let executable = mode & 0o111 != 0 || name.path == "bootstrap";
    Ok(Kind::File { executable })
}

fn check_format(entry: &ZipFileEntry<'_>, name: &EntryName) -> Result<(), ZipError> {
    if entry.encrypted() {
        return Err(refuse(format!("zip entry {:?} is encrypted", name.shown)));
    }
    let method = entry.compression();
    if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
        return Err(refuse(format!(
            "zip entry {:?} uses compression method {method:?}; only stored and deflate are supported",
            name.shown
        )));
    }
    Ok(())
}

/// The tree the zip describes, one node per path component, so checking a path costs time
/// linear in its length and memory is bounded by the entry limit.
#[derive(Default)]
struct Tree {
    nodes: HashMap<(usize, String), Node>,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    id: usize,
    is_file: bool,
    /// Named by an entry of its own (not only implied by a longer path).
    explicit: bool,
}

impl Tree {
    /// Adds one entry: refuses duplicates and files used as directories, creates the parents
    /// it implies, then the entry itself (directories only; files are written by the caller).
    fn add(
        &mut self,
        name: &EntryName,
        kind: Kind,
        limits: &ZipLimits,
        sink: &mut dyn Sink,
    ) -> Result<(), ZipError> {
        if name.path.is_empty() {
            return Ok(()); // `./`: the root itself
        }
        let (parent_path, leaf) = match name.path.rfind('/') {
            Some(i) => (&name.path[..i], &name.path[i + 1..]),
            None => ("", name.path.as_str()),
        };
        let parent = self.parents(name, parent_path, limits, sink)?;
        let key = (parent, leaf.to_owned());
        let is_file = matches!(kind, Kind::File { .. });
        if let Some(node) = self.nodes.get_mut(&key) {
            if node.explicit {
                return Err(refuse(format!(
                    "zip entry {:?} appears more than once",
                    name.shown
                )));
            }
            if is_file {
                return Err(refuse(format!(
                    "zip entry {:?} is a file but also a directory",
                    name.shown
                )));
            }
            node.explicit = true;
            return Ok(());
        }
        self.insert(key, is_file, true, limits)?;
        if !is_file {
            sink.dir(&name.path)?;
        }
        Ok(())
    }

    /// Walks (and creates) the directories above an entry; returns the id of the last one.
    fn parents(
        &mut self,
        name: &EntryName,
        parent_path: &str,
        limits: &ZipLimits,
        sink: &mut dyn Sink,
    ) -> Result<usize, ZipError> {
        let mut id = 0; // the root
        if parent_path.is_empty() {
            return Ok(id);
        }
        let mut end = 0;
        for part in parent_path.split('/') {
            end += part.len();
            let key = (id, part.to_owned());
            id = match self.nodes.get(&key) {
                Some(node) if node.is_file => {
                    return Err(refuse(format!(
                        "zip entry {:?} is inside {:?}, which is a file",
                        name.shown,
                        &parent_path[..end]
                    )));
                }
                Some(node) => node.id,
                None => {
                    let id = self.insert(key, false, false, limits)?;
                    sink.dir(&parent_path[..end])?;
                    id
                }
            };
            end += 1; // the '/'
        }
        Ok(id)
    }

    fn insert(
        &mut self,
        key: (usize, String),
        is_file: bool,
        explicit: bool,
        limits: &ZipLimits,
    ) -> Result<usize, ZipError> {
        if self.nodes.len() >= max_nodes(limits) {
            return Err(refuse(format!(
                "the zip's paths make more than {} files and directories",
                max_nodes(limits)
            )));
        }
        let id = self.nodes.len() + 1;
        self.nodes.insert(
            key,
            Node {
                id,
                is_file,
                explicit,
            },
        );
        Ok(id)
    }
}
