//! Agent side of `hearth sandbox-init`: start the helper with its cgroups and network
//! namespace, wait until it is ready, hand it the spec, follow the status pipe until the
//! runtime is exec'd (protocol.rs).

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::pipe2;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use super::protocol::{InitRequest, Prepare, Status};
use super::sys;
use super::{ExitReason, SandboxError};

/// How long a helper may take from spawn to exec of the runtime before it is given up on.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The status pipe, line by line.
pub(crate) type StatusLines = tokio::io::Lines<BufReader<tokio::net::unix::pipe::Receiver>>;

/// A helper that has started (not necessarily finished) preparing itself.
pub(crate) struct Started {
    pub child: Child,
    pub stdin: ChildStdin,
    pub status: StatusLines,
    /// Read end of the runtime's stdout+stderr pipe (non-blocking).
    pub output: OwnedFd,
}

/// A sandbox whose runtime was exec'd.
pub(crate) struct Running {
    pub pid1: i32,
    pub pidfd: OwnedFd,
}

fn spawn_err(step: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Spawn(format!("{step}: {e}"))
}

/// Spawns `helper_exe sandbox-init <status-fd>` with the output pipe on stdout and stderr,
/// the status pipe and `netns` inherited, and the preparation as a JSON line on stdin.
pub(crate) async fn start(
    helper_exe: &std::path::Path,
    mut prep: Prepare,
    netns: OwnedFd,
) -> Result<Started, SandboxError> {
    let (output_r, output_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| spawn_err("output pipe", e))?;
    let (status_r, status_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| spawn_err("status pipe", e))?;
    fcntl(&output_r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(|e| spawn_err("output pipe", e))?;
    prep.netns_fd = netns.as_raw_fd();
    let output_w2 = output_w
        .try_clone()
        .map_err(|e| spawn_err("output pipe", e))?;
    let mut cmd = Command::new(helper_exe);
    cmd.arg("sandbox-init")
        .arg(status_w.as_raw_fd().to_string())
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::from(output_w))
        .stderr(Stdio::from(output_w2))
        .kill_on_drop(true);
    sys::keep_fds_across_exec(&mut cmd, [status_w.as_raw_fd(), netns.as_raw_fd()]);
    let spawned = cmd.spawn();
    drop(cmd); // closes our copies of the output pipe's write end
    drop((status_w, netns));
    let mut child = spawned.map_err(|e| spawn_err(&format!("{}", helper_exe.display()), e))?;
    let status = tokio::net::unix::pipe::Receiver::from_owned_fd(status_r)
        .map_err(|e| spawn_err("status pipe", e))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| spawn_err("helper stdin", "missing"))?;
    send_line(&mut stdin, &prep).await?;
    Ok(Started {
        child,
        stdin,
        status: BufReader::new(status).lines(),
        output: output_r,
    })
}

/// Writes one JSON line to the helper. A helper that died cannot read it: its status pipe
/// says why, so a write error is only logged.
async fn send_line(
    stdin: &mut ChildStdin,
    msg: &impl serde::Serialize,
) -> Result<(), SandboxError> {
    let mut line = serde_json::to_vec(msg).map_err(|e| spawn_err("encoding for the helper", e))?;
    line.push(b'\n');
    if let Err(e) = stdin.write_all(&line).await {
        tracing::debug!(error = %e, "writing to sandbox-init");
    }
    Ok(())
}

/// Waits for the helper's `ready`: it joined its cgroups and network namespace.
pub(crate) async fn ready(status: &mut StatusLines) -> Result<(), SandboxError> {
    let line = status
        .next_line()
        .await
        .map_err(|e| SandboxError::Helper(format!("status pipe: {e}")))?;
    match line.as_deref().map(Status::decode) {
        Some(Some(Status::Ready)) => Ok(()),
        Some(Some(Status::Fail(msg))) => Err(SandboxError::Helper(msg)),
        None => Err(SandboxError::Helper("exited before it was ready".into())),
        Some(_) => Err(SandboxError::Helper(format!(
            "unexpected status line {line:?}"
        ))),
    }
}

/// Hands a ready helper its spec.
pub(crate) async fn send_spec(
    stdin: &mut ChildStdin,
    req: &InitRequest,
) -> Result<(), SandboxError> {
    send_line(stdin, req).await
}

/// Follows the status pipe to its end: takes a pidfd of pid 1 as soon as its pid arrives
/// (then closes stdin, the helper's "go"), and returns once the runtime was exec'd.
pub(crate) async fn handshake(
    mut lines: StatusLines,
    stdin: ChildStdin,
) -> Result<Running, SandboxError> {
    let mut stdin = Some(stdin);
    let mut pid1 = None;
    let mut failure = None;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| SandboxError::Helper(format!("status pipe: {e}")))?
    {
        match Status::decode(&line) {
            Some(Status::Pid(pid)) if pid1.is_none() => {
                let pidfd = sys::pidfd_open(pid)
                    .map_err(|e| SandboxError::Helper(format!("pidfd_open({pid}): {e}")))?;
                pid1 = Some(Running { pid1: pid, pidfd });
                stdin = None; // "go"
            }
            Some(Status::Exec(msg)) => failure = Some(SandboxError::Exec(msg)),
            Some(Status::Fail(msg)) => failure = Some(SandboxError::Helper(msg)),
            _ => {
                failure = Some(SandboxError::Helper(format!(
                    "unexpected status line {line:?}"
                )))
            }
        }
    }
    drop(stdin);
    match (failure, pid1) {
        (Some(err), _) => Err(err),
        (None, Some(running)) => Ok(running),
        (None, None) => Err(SandboxError::Helper(
            "exited before starting the sandbox".into(),
        )),
    }
}

/// How a finished helper ended, which is how the runtime ended.
pub(crate) fn exit_reason(status: std::io::Result<std::process::ExitStatus>) -> ExitReason {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => ExitReason::Exited(code),
            (None, Some(sig)) => ExitReason::Signaled(sig),
            (None, None) => ExitReason::Signaled(libc::SIGKILL),
        },
        Err(e) => {
            tracing::warn!(error = %e, "waiting for sandbox-init");
            ExitReason::Signaled(libc::SIGKILL)
        }
    }
}
