//! Per-instance logs: the runtime's stdout and stderr, with START/END/REPORT lines, kept in
//! a bounded in-memory buffer (for `X-Amz-Log-Type: Tail`) and appended to
//! `<data>/logs/<function>/<instance>.log`, rotated to `<instance>.log.1` past a size bound;
//! each function keeps a bounded number of files. [`read_function_logs`] serves
//! `hearth fn logs` through the public API.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::net::unix::pipe;

/// Bytes of recent output kept per instance.
const KEEP: usize = 256 * 1024;
/// Bytes returned for `X-Amz-Log-Type: Tail`.
pub const TAIL: usize = 4096;

struct State {
    /// The most recent bytes (at most [`KEEP`]).
    recent: VecDeque<u8>,
    /// Bytes ever appended; the offset just past `recent`.
    total: u64,
    file: Option<File>,
    path: PathBuf,
    /// Bytes in the current file, and the bound past which it is rotated.
    file_bytes: u64,
    max_file_bytes: u64,
}

/// One instance's log.
pub struct InstanceLog {
    state: Mutex<State>,
    /// The pipe for readiness (tokio) and a duplicate of it for reads that must not depend
    /// on tokio's cached readiness (the drain at the end of an invocation).
    pipe: Option<(pipe::Receiver, File)>,
}

impl InstanceLog {
    /// Opens the log file and wraps the output pipe (non-blocking read end).
    pub fn new(pipe: OwnedFd, path: &Path, max_file_bytes: u64) -> std::io::Result<Arc<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let state = State {
            recent: VecDeque::new(),
            total: 0,
            file: Some(file),
            path: path.to_path_buf(),
            file_bytes: 0,
            max_file_bytes,
        };
        let reader = File::from(pipe.try_clone()?);
        let pipe = Some((pipe::Receiver::from_owned_fd(pipe)?, reader));
        Ok(Arc::new(InstanceLog {
            state: Mutex::new(state),
            pipe,
        }))
    }

    /// Appends platform lines (START, END, REPORT, errors).
    pub fn append(&self, bytes: &[u8]) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        push(&mut st, bytes);
    }

    /// Reads whatever the runtime has written so far (without waiting). Reading and appending
    /// happen under one lock, so output stays in order whoever calls this.
    pub fn pump(&self) -> bool {
        let Some((_, reader)) = &self.pipe else {
            return false;
        };
        let mut reader: &File = reader;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => push(&mut st, &buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }

    /// Follows the pipe until the runtime closes it (all its processes are gone).
    pub async fn follow(self: Arc<Self>) {
        let Some((pipe, _)) = &self.pipe else { return };
        loop {
            if pipe.readable().await.is_err() || !self.pump() {
                return;
            }
            // Everything available was read: let tokio wait for the next edge.
            let _ = pipe.try_io(|| Err::<(), _>(std::io::ErrorKind::WouldBlock.into()));
        }
    }

    /// Current offset (bytes appended so far).
    pub fn offset(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// The last [`TAIL`] bytes of what was appended since `offset`.
    pub fn tail_since(&self, offset: u64) -> Vec<u8> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let since = st.total.saturating_sub(offset) as usize;
        let take = since.min(TAIL).min(st.recent.len());
        st.recent
            .iter()
            .skip(st.recent.len() - take)
            .copied()
            .collect()
    }
}

fn push(st: &mut State, bytes: &[u8]) {
    if let Some(f) = st.file.as_mut()
        && f.write_all(bytes).is_err()
    {
        st.file = None;
    }
    st.file_bytes += bytes.len() as u64;
    if st.file_bytes > st.max_file_bytes {
        rotate(st);
    }
    st.recent.extend(bytes);
    let excess = st.recent.len().saturating_sub(KEEP);
    st.recent.drain(..excess);
    st.total += bytes.len() as u64;
}

/// Moves the current file to `<name>.1` (replacing an older one) and starts a new one, so a
/// function that writes without end holds at most twice the bound on disk per instance.
fn rotate(st: &mut State) {
    let mut old = st.path.clone().into_os_string();
    old.push(".1");
    st.file = std::fs::rename(&st.path, &old)
        .and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&st.path)
        })
        .ok();
    st.file_bytes = 0;
}

/// Keeps the newest `keep` log files of a function directory (by modification time).
pub fn prune(dir: &Path, keep: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep);
    for (_, path) in files.into_iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
}

/// Most bytes one read of a function's logs returns.
pub const MAX_READ: usize = 1 << 20;

/// Reads a function's current log files (oldest first). Without a cursor: the last `tail`
/// bytes. With one (`file=offset;…`, as returned): what was written since. Returns the bytes and
/// the cursor to continue from.
pub fn read_function_logs(
    dir: &Path,
    cursor: Option<&str>,
    tail: usize,
) -> std::io::Result<(Vec<u8>, String)> {
    use std::io::{Seek, SeekFrom};
    let mut files: Vec<(std::time::SystemTime, String, u64)> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let m = e.metadata().ok()?;
                name.ends_with(".log")
                    .then_some((m.modified().ok()?, name, m.len()))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(e),
    };
    files.sort();
    let seen: std::collections::HashMap<&str, u64> = cursor
        .unwrap_or("")
        .split(';')
        .filter_map(|kv| {
            kv.split_once('=')
                .and_then(|(k, v)| Some((k, v.parse().ok()?)))
        })
        .collect();
    let mut out = Vec::new();
    let mut next = Vec::new();
    let mut budget = if cursor.is_some() {
        MAX_READ
    } else {
        tail.min(MAX_READ)
    };
    // Without a cursor the tail comes from the newest files: walk them newest first.
    let order: Vec<_> = if cursor.is_some() {
        files.iter().collect()
    } else {
        files.iter().rev().collect()
    };
    let mut pieces = Vec::new();
    for (_, name, len) in order {
        let start = match cursor {
            Some(_) => seen.get(name.as_str()).copied().unwrap_or(0).min(*len),
            None => len.saturating_sub(budget as u64),
        };
        let take = ((len - start) as usize).min(budget);
        let mut buf = vec![0u8; take];
        let mut f = File::open(dir.join(name))?;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf)?;
        budget -= take;
        next.push(format!("{name}={}", start + take as u64));
        pieces.push(buf);
    }
    if cursor.is_none() {
        pieces.reverse();
    }
    pieces.into_iter().for_each(|p| out.extend(p));
    Ok((out, next.join(";")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log on a fresh non-blocking pipe (its tokio runtime and writer kept with it).
    fn open_log(
        path: &Path,
        max: u64,
    ) -> (
        tokio::runtime::Runtime,
        Arc<InstanceLog>,
        std::io::PipeWriter,
    ) {
        let (r, w) = std::io::pipe().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let fd: OwnedFd = r.into();
        nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let log = {
            let _g = rt.enter();
            InstanceLog::new(fd, path, max).unwrap()
        };
        (rt, log, w)
    }

    #[test]
    fn tail_holds_only_bytes_since_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (_rt, log, w) = open_log(&dir.path().join("x.log"), 1 << 20);
        log.append(b"first invocation\n");
        let off = log.offset();
        (&w).write_all(b"second\n").unwrap();
        log.pump();
        assert_eq!(log.tail_since(off), b"second\n");
        log.append(&vec![b'x'; 10_000]);
        assert_eq!(log.tail_since(off).len(), TAIL);
        assert!(
            std::fs::read(dir.path().join("x.log"))
                .unwrap()
                .starts_with(b"first invocation\nsecond\n")
        );
    }

    #[test]
    fn rotation_bounds_each_file_and_reads_follow_with_a_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let (_rt, log, _w) = open_log(&dir.path().join("i.log"), 100);
        for _ in 0..30 {
            log.append(b"0123456789\n");
        }
        let cur = std::fs::metadata(dir.path().join("i.log")).unwrap().len();
        let old = std::fs::metadata(dir.path().join("i.log.1")).unwrap().len();
        assert!(cur <= 110 && old <= 110, "{cur} {old}");
        let (tail, cursor) = read_function_logs(dir.path(), None, 25).unwrap();
        assert_eq!(tail.len(), 25.min(cur as usize));
        log.append(b"new line\n");
        let (more, _) = read_function_logs(dir.path(), Some(&cursor), 0).unwrap();
        assert!(
            more.ends_with(b"new line\n"),
            "{}",
            String::from_utf8_lossy(&more)
        );
        std::fs::write(dir.path().join("a.log"), b"x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("b.log"), b"y").unwrap();
        prune(dir.path(), 2);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
