//! The sandbox's network namespace: `lo` up and the Runtime API listener bound inside it.
//!
//! A network namespace is a per-thread attribute, and the agent's tokio threads must stay in
//! the host namespace, so the work happens on a dedicated thread that ends afterwards. The
//! namespace lives on through the listener socket and the namespace descriptor.

use std::net::TcpListener;
use std::os::fd::OwnedFd;

use nix::sched::{CloneFlags, unshare};

use super::SandboxError;
use super::sys;

/// Where the Runtime API listens inside every sandbox.
pub const RUNTIME_API_ADDR: &str = "127.0.0.1:9001";

/// A fresh network namespace with its Runtime API listener.
pub(crate) struct NetNs {
    /// Non-blocking listener bound at [`RUNTIME_API_ADDR`] inside the namespace.
    pub listener: TcpListener,
    /// `/proc/thread-self/ns/net` of the namespace, handed to the helper for `setns`.
    pub fd: OwnedFd,
}

/// Creates the namespace on a dedicated thread and waits for it without blocking the runtime.
pub(crate) async fn create() -> Result<NetNs, SandboxError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hearth-netns".into())
        .spawn(move || {
            let _ = tx.send(create_on_this_thread());
        })
        .map_err(|e| SandboxError::NetNs(format!("starting the netns thread: {e}")))?;
    rx.await
        .map_err(|_| SandboxError::NetNs("netns thread ended without an answer".into()))?
}

/// Runs on a throwaway thread: it leaves the thread in the new namespace for good.
fn create_on_this_thread() -> Result<NetNs, SandboxError> {
    let err = |step: &str, e: &dyn std::fmt::Display| SandboxError::NetNs(format!("{step}: {e}"));
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| err("unshare(CLONE_NEWNET)", &e))?;
    sys::interface_up("lo").map_err(|e| err("bringing lo up", &e))?;
    let listener = TcpListener::bind(RUNTIME_API_ADDR).map_err(|e| err("binding 9001", &e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| err("non-blocking listener", &e))?;
    let fd = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| err("opening /proc/thread-self/ns/net", &e))?;
    Ok(NetNs {
        listener,
        fd: fd.into(),
    })
}
