//! `hearth sandbox-init`: the single-threaded helper that turns a prepared network namespace
//! and cgroups into a running sandbox (DESIGN.md "Sandbox construction").
//!
//! Three processes, each with one linear setup function:
//! - the **helper** ([`helper`]): joins cgroups and the network namespace, unshares pid,
//!   mount, ipc and uts, reports `ready` (a stem cell, see stemcell.rs), reads the spec,
//!   forks pid 1, reports its pid, waits for it, exits like the runtime;
//! - **pid 1** ([`pid1_setup`]): builds the root filesystem, forks the runtime, then reaps
//!   every process of the namespace and, once the runtime is gone, kills the rest;
//! - the **runtime** ([`runtime_exec`]): drops to the sandbox uid and every privilege, execs.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::prctl;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, execve, pipe2, setgroups, setresgid, setresuid};

use super::ExitReason;
use super::protocol::{InitRequest, Prepare, Status, decode_end, encode_end};
use super::rootfs::{self, RootfsError};
use super::seccomp;
use super::sys;

/// File-descriptor limit of the runtime.
const RUNTIME_NOFILE: u64 = 1024;

/// One variant per setup step; the message travels to the agent on the status pipe.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("usage: hearth sandbox-init <status-fd> (started by the agent only)")]
    Usage,
    #[error("parent-death signal: {0}")]
    DeathSignal(Errno),
    #[error("reading the preparation from stdin: {0}")]
    Prepare(String),
    #[error("reading the spec from stdin: {0}")]
    Spec(String),
    #[error("joining cgroup {0}: {1}")]
    JoinCgroup(PathBuf, std::io::Error),
    #[error("joining the network namespace: {0}")]
    JoinNetns(String),
    #[error("unsharing pid, mount, ipc and uts namespaces: {0}")]
    Unshare(Errno),
    #[error("creating a pipe: {0}")]
    Pipe(Errno),
    #[error("fork: {0}")]
    Fork(std::io::Error),
    #[error("reporting to the agent: {0}")]
    Report(std::io::Error),
    #[error("waiting for the sandbox's pid 1: {0}")]
    Wait(Errno),
    #[error("the helper died while pid 1 started")]
    HelperGone,
    #[error("hostname: {0}")]
    Hostname(Errno),
    #[error("making mounts private: {0}")]
    PrivateMounts(Errno),
    #[error("root filesystem: {0}")]
    Rootfs(#[from] RootfsError),
    #[error("argv/env: {0}")]
    Args(String),
    #[error("chdir /var/task: {0}")]
    Chdir(std::io::Error),
    #[error("stdin from /dev/null: {0}")]
    Stdin(String),
    #[error("signal dispositions: {0}")]
    Signals(std::io::Error),
    #[error("close-on-exec for inherited descriptors: {0}")]
    CloseOnExec(std::io::Error),
    #[error("setting the gid: {0}")]
    SetGid(Errno),
    #[error("dropping capabilities: {0}")]
    Caps(std::io::Error),
    #[error("setting the uid: {0}")]
    SetUid(Errno),
    #[error("no_new_privs: {0}")]
    NoNewPrivs(Errno),
    #[error("rlimit: {0}")]
    Rlimit(Errno),
    #[error("installing the seccomp filter: {0}")]
    Seccomp(std::io::Error),
    #[error("execve {0}: {1}")]
    Exec(String, Errno),
}

impl InitError {
    fn status(&self) -> Status {
        match self {
            InitError::Exec(..) => Status::Exec(self.to_string()),
            _ => Status::Fail(self.to_string()),
        }
    }
}

/// This process's copy of the status pipe's write end (see protocol.rs).
struct Reporter(Option<File>);

impl Reporter {
    fn send(&mut self, status: &Status) -> std::io::Result<()> {
        match &mut self.0 {
            Some(file) => file.write_all(status.encode().as_bytes()),
            None => Ok(()),
        }
    }

    /// Closes this copy: the agent sees end of file once every copy is closed.
    fn close(&mut self) {
        self.0 = None;
    }
}

/// Entry point: runs the helper and exits the way the runtime ended.
pub fn main() -> ! {
    let status_fd = std::env::args().nth(2).and_then(|s| s.parse().ok());
    let status = status_fd.and_then(|fd| sys::take_inherited_fd(fd).ok());
    let mut reporter = Reporter(status.map(File::from));
    if reporter.0.is_none() {
        fail(&mut reporter, &InitError::Usage)
    }
    match helper(&mut reporter) {
        Ok(ExitReason::Exited(code)) => std::process::exit(code),
        Ok(ExitReason::Signaled(sig)) => sys::die_by_signal(sig),
        Err(e) => fail(&mut reporter, &e),
    }
}

/// Reports `err` to the agent (status pipe) and the runtime's log (stderr), exits 127.
fn fail(reporter: &mut Reporter, err: &InitError) -> ! {
    let _ = reporter.send(&err.status());
    let _ = writeln!(std::io::stderr(), "hearth sandbox: {err}");
    std::process::exit(127)
}

/// The helper: from a plain child of the agent to a prepared stem cell (waiting for its
/// spec), then to a waiting parent of the sandbox's pid 1.
fn helper(reporter: &mut Reporter) -> Result<ExitReason, InitError> {
    // Die with the agent (more exactly: with the agent thread that spawned us).
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(InitError::DeathSignal)?;
    // Never dump core when re-raising the runtime's fatal signal.
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    // The preparation: one JSON line naming the cell's cgroups and network namespace.
    let mut stdin = BufReader::new(std::io::stdin().lock());
    let prep: Prepare = read_line(&mut stdin).map_err(InitError::Prepare)?;
    // Join the cell's cgroups, so that everything forked from now on is accounted there
    // (the agent writes their limits when it specializes the cell).
    for procs in &prep.cgroup_procs {
        let pid = std::process::id().to_string();
        std::fs::write(procs, pid).map_err(|e| InitError::JoinCgroup(procs.clone(), e))?;
    }
    // Enter the network namespace the agent prepared (lo up, Runtime API bound).
    let netns =
        sys::take_inherited_fd(prep.netns_fd).map_err(|e| InitError::JoinNetns(e.to_string()))?;
    setns(&netns, CloneFlags::CLONE_NEWNET).map_err(|e| InitError::JoinNetns(e.to_string()))?;
    drop(netns);
    // New pid (for our children), mount, ipc and uts namespaces.
    let flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    unshare(flags).map_err(InitError::Unshare)?;
    // A stem cell now: say so, and wait for the spec (one JSON line; stdin then stays open
    // as the agent's "go", see protocol.rs).
    reporter.send(&Status::Ready).map_err(InitError::Report)?;
    let req: InitRequest = read_line(&mut stdin).map_err(InitError::Spec)?;
    // Fork pid 1; it tells us how the runtime ended on a private pipe, and checks through a
    // pidfd of ours that we did not die before its parent-death signal was armed.
    let (end_r, end_w) = pipe2(OFlag::O_CLOEXEC).map_err(InitError::Pipe)?;
    let helper = sys::pidfd_open(std::process::id() as i32).map_err(InitError::Fork)?;
    let pid1 = match sys::fork_single_threaded().map_err(InitError::Fork)? {
        ForkResult::Child => {
            drop(end_r);
            pid1_main(&req, reporter, end_w, helper)
        }
        ForkResult::Parent { child } => child,
    };
    drop((end_w, helper));
    // Report pid 1's host pid, then let go of the status pipe (pid 1 and the runtime hold it).
    reporter
        .send(&Status::Pid(pid1.as_raw()))
        .map_err(InitError::Report)?;
    reporter.close();
    let _ = std::io::copy(&mut stdin, &mut std::io::sink()); // the agent's "go": EOF
    wait_pid1(pid1, end_r)
}

/// One JSON line from stdin (end of file is an error: the agent gave up on us).
fn read_line<T: serde::de::DeserializeOwned>(stdin: &mut impl BufRead) -> Result<T, String> {
    let mut line = String::new();
    match stdin.read_line(&mut line) {
        Ok(0) => Err("end of file".into()),
        Ok(_) => serde_json::from_str(&line).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Waits for pid 1 and returns how the runtime ended (pid 1's own death if it was killed).
fn wait_pid1(pid1: Pid, end_r: OwnedFd) -> Result<ExitReason, InitError> {
    let waited = loop {
        match waitpid(pid1, None) {
            Err(Errno::EINTR) => continue,
            other => break other.map_err(InitError::Wait)?,
        }
    };
    let mut told = String::new();
    let _ = File::from(end_r).read_to_string(&mut told);
    Ok(match (waited, decode_end(&told)) {
        (WaitStatus::Exited(_, _), Some(reason)) => reason,
        (WaitStatus::Exited(_, code), None) => ExitReason::Exited(code),
        (WaitStatus::Signaled(_, sig, _), _) => ExitReason::Signaled(sig as i32),
        (_, _) => ExitReason::Signaled(Signal::SIGKILL as i32),
    })
}

/// Pid 1 of the sandbox: never returns.
fn pid1_main(req: &InitRequest, reporter: &mut Reporter, end_w: OwnedFd, helper: OwnedFd) -> ! {
    let runtime = match pid1_setup(req, reporter, helper) {
        Ok(pid) => pid,
        Err(e) => fail(reporter, &e),
    };
    reporter.close();
    let reason = reap_until_runtime_ends(runtime);
    let _ = File::from(end_w).write_all(encode_end(reason).as_bytes());
    std::process::exit(0)
}

/// Builds the sandbox's root and forks the runtime; returns the runtime's pid.
fn pid1_setup(
    req: &InitRequest,
    reporter: &mut Reporter,
    helper: OwnedFd,
) -> Result<Pid, InitError> {
    // Die with the helper (and if it died before the signal was armed, stop here).
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(InitError::DeathSignal)?;
    if sys::pidfd_exited(helper.as_fd()).unwrap_or(true) {
        return Err(InitError::HelperGone);
    }
    drop(helper);
    // Our own hostname (new uts namespace).
    nix::unistd::sethostname(&req.instance_id).map_err(InitError::Hostname)?;
    // Nothing mounted from here on may propagate back to the host.
    let private = nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE;
    nix::mount::mount(None::<&str>, "/", None::<&str>, private, None::<&str>)
        .map_err(InitError::PrivateMounts)?;
    // The allow-listed tree on a tmpfs, then pivot into it and make `/` read-only.
    rootfs::build(req)?;
    rootfs::enter(&req.rootfs_mountpoint)?;
    // The runtime.
    match sys::fork_single_threaded().map_err(InitError::Fork)? {
        ForkResult::Child => {
            let err = runtime_exec(req);
            fail(reporter, &err)
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Acts as init: reaps every child; once the runtime has ended, kills everything left in the
/// namespace, reaps it all, and returns how the runtime ended.
fn reap_until_runtime_ends(runtime: Pid) -> ExitReason {
    let mut reason = None;
    loop {
        let ended = match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == runtime => ExitReason::Exited(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == runtime => {
                ExitReason::Signaled(sig as i32)
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => break, // ECHILD: nobody left
        };
        reason = Some(ended);
        // pid 1 sending to -1 reaches every other process of its namespace.
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    }
    reason.unwrap_or(ExitReason::Exited(127))
}

/// The runtime process: drops privileges and execs; returns only the error that stopped it.
fn runtime_exec(req: &InitRequest) -> InitError {
    match runtime_setup(req) {
        Ok((path, argv, env)) => {
            let Err(e) = execve(&path, &argv, &env);
            InitError::Exec(req.argv.first().cloned().unwrap_or_default(), e)
        }
        Err(e) => e,
    }
}

type ExecArgs = (CString, Vec<CString>, Vec<CString>);

fn runtime_setup(req: &InitRequest) -> Result<ExecArgs, InitError> {
    // argv and the exact environment, as C strings.
    let args = exec_args(req)?;
    // cwd /var/task, stdin /dev/null.
    std::env::set_current_dir("/var/task").map_err(InitError::Chdir)?;
    let null = File::open("/dev/null").map_err(|e| InitError::Stdin(e.to_string()))?;
    nix::unistd::dup2_stdin(null.as_fd()).map_err(|e| InitError::Stdin(e.to_string()))?;
    drop(null);
    // Default signal dispositions and mask; nothing but stdio survives the exec.
    sys::reset_signals().map_err(InitError::Signals)?;
    sys::cloexec_from(3).map_err(InitError::CloseOnExec)?;
    // rlimits.
    setrlimit(Resource::RLIMIT_NOFILE, RUNTIME_NOFILE, RUNTIME_NOFILE)
        .map_err(InitError::Rlimit)?;
    // Unprivileged gid and uid; no capability can come back.
    let gid = Gid::from_raw(req.gid);
    setgroups(&[gid]).map_err(InitError::SetGid)?;
    setresgid(gid, gid, gid).map_err(InitError::SetGid)?;
    sys::drop_bounding_set().map_err(InitError::Caps)?;
    sys::clear_ambient_caps().map_err(InitError::Caps)?;
    let uid = Uid::from_raw(req.uid);
    setresuid(uid, uid, uid).map_err(InitError::SetUid)?;
    prctl::set_no_new_privs().map_err(InitError::NoNewPrivs)?;
    // The seccomp filter (seccomp.rs), last before exec: nothing after it needs a refused call.
    seccomp::install(&req.seccomp).map_err(InitError::Seccomp)?;
    Ok(args)
}

fn exec_args(req: &InitRequest) -> Result<ExecArgs, InitError> {
    let c = |s: String| CString::new(s).map_err(|e| InitError::Args(e.to_string()));
    let argv = req
        .argv
        .iter()
        .cloned()
        .map(c)
        .collect::<Result<Vec<_>, _>>()?;
    let env = req
        .env
        .iter()
        .map(|(k, v)| c(format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()?;
    let path = argv
        .first()
        .cloned()
        .ok_or_else(|| InitError::Args("empty argv".into()))?;
    Ok((path, argv, env))
}
