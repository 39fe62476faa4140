//! Per-instance logs: the runtime's stdout and stderr, with START/END/REPORT lines, kept in
//! a bounded in-memory buffer (for `X-Amz-Log-Type: Tail`) and appended to
//! `<data>/logs/<function>/<instance>.log`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
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
    pub fn new(pipe: OwnedFd, file: &Path) -> std::io::Result<Arc<Self>> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)?;
        let state = State {
            recent: VecDeque::new(),
            total: 0,
            file: Some(file),
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
    st.recent.extend(bytes);
    let excess = st.recent.len().saturating_sub(KEEP);
    st.recent.drain(..excess);
    st.total += bytes.len() as u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_holds_only_bytes_since_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (r, w) = std::io::pipe().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let fd: OwnedFd = r.into();
        nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let log = InstanceLog::new(fd, &dir.path().join("x.log")).unwrap();
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
}
