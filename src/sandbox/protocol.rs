//! What the agent and `hearth sandbox-init` say to each other.
//!
//! - argv: `hearth sandbox-init <status-fd>`; the status pipe's write end is that descriptor.
//! - stdin: one JSON line ([`Prepare`]: the cell's cgroups and network namespace); the helper
//!   joins them, unshares its namespaces and answers `ready`. Then, possibly much later (a
//!   waiting *stem cell*), one JSON line ([`InitRequest`], the spec); then the agent keeps
//!   stdin open until it holds a pidfd of the sandbox's pid 1, and closes it as the "go"
//!   (only then may the helper reap pid 1, so its pid cannot be reused while the agent opens
//!   the pidfd).
//! - status pipe, one line each ([`Status`]): `ready`, then `pid <host pid of pid 1>`, then at
//!   most one `fail <message>` or `exec <message>` (a `fail` may also come instead of any
//!   earlier line). End of file after `pid` without either means the runtime was exec'd (the
//!   last copy of the write end is close-on-exec in the runtime process).
//! - exit status of the helper: the runtime's (exit code, or death by the same signal).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the helper joins before any spec exists, sent as the first JSON line on its stdin.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Prepare {
    /// `cgroup.procs` files the helper writes its pid into.
    pub cgroup_procs: Vec<PathBuf>,
    /// Descriptor number of the sandbox's network namespace in the helper.
    pub netns_fd: i32,
}

/// The spec and settings the helper needs, sent as the second JSON line on its stdin.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InitRequest {
    pub instance_id: String,
    pub code_dir: PathBuf,
    pub runtime_dir: Option<PathBuf>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub tmp_size_mb: u32,
    pub uid: u32,
    pub gid: u32,
    pub rootfs_mountpoint: PathBuf,
    /// The compiled seccomp programs the runtime installs last before exec.
    pub seccomp: super::seccomp::CompiledPolicy,
}

/// One line on the status pipe.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// The helper joined its cgroups and network namespace and waits for the spec.
    Ready,
    /// Host pid of the sandbox's pid 1.
    Pid(i32),
    /// A setup step failed (platform side).
    Fail(String),
    /// `execve` of the runtime failed (function side: bad or missing entry point).
    Exec(String),
}

impl Status {
    /// The line to write, newline included; messages are kept on one line.
    pub fn encode(&self) -> String {
        match self {
            Status::Ready => "ready\n".to_owned(),
            Status::Pid(pid) => format!("pid {pid}\n"),
            Status::Fail(msg) => format!("fail {}\n", one_line(msg)),
            Status::Exec(msg) => format!("exec {}\n", one_line(msg)),
        }
    }

    /// Parses one line (without its newline).
    pub fn decode(line: &str) -> Option<Status> {
        if line == "ready" {
            return Some(Status::Ready);
        }
        let (kind, rest) = line.split_once(' ')?;
        match kind {
            "pid" => rest.parse().ok().map(Status::Pid),
            "fail" => Some(Status::Fail(rest.to_owned())),
            "exec" => Some(Status::Exec(rest.to_owned())),
            _ => None,
        }
    }
}

fn one_line(msg: &str) -> String {
    msg.replace('\n', " ")
}

/// How the runtime ended, as pid 1 tells the helper (one line on a private pipe).
pub(crate) fn encode_end(reason: super::ExitReason) -> String {
    match reason {
        super::ExitReason::Exited(code) => format!("exited {code}\n"),
        super::ExitReason::Signaled(sig) => format!("signaled {sig}\n"),
    }
}

pub(crate) fn decode_end(line: &str) -> Option<super::ExitReason> {
    let (kind, value) = line.trim_end().split_once(' ')?;
    let value = value.parse().ok()?;
    match kind {
        "exited" => Some(super::ExitReason::Exited(value)),
        "signaled" => Some(super::ExitReason::Signaled(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::ExitReason;

    #[test]
    fn status_round_trips() {
        for s in [
            Status::Ready,
            Status::Pid(42),
            Status::Fail("a\nb".into()),
            Status::Exec("x".into()),
        ] {
            let line = s.encode();
            let back = Status::decode(line.trim_end_matches('\n')).unwrap();
            match (&s, back) {
                (Status::Fail(_), Status::Fail(m)) => assert_eq!(m, "a b"),
                (_, b) => assert_eq!(s, b),
            }
        }
        assert_eq!(Status::decode("bogus"), None);
        assert_eq!(Status::decode("pid x"), None);
    }

    #[test]
    fn end_round_trips() {
        for r in [ExitReason::Exited(3), ExitReason::Signaled(9)] {
            assert_eq!(decode_end(&encode_end(r)), Some(r));
        }
        assert_eq!(decode_end("nonsense"), None);
    }
}
