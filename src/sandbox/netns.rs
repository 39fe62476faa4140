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
/// Where the egress proxy listens inside a sandbox that has egress.
pub const EGRESS_PROXY_ADDR: &str = "127.0.0.1:3128";

/// A fresh network namespace with its Runtime API listener.
pub(crate) struct NetNs {
    /// Non-blocking listener bound at [`RUNTIME_API_ADDR`] inside the namespace.
    pub listener: TcpListener,
    /// Non-blocking listener at [`EGRESS_PROXY_ADDR`], when asked for.
    pub egress: Option<TcpListener>,
    /// `/proc/thread-self/ns/net` of the namespace, handed to the helper for `setns`.
    pub fd: OwnedFd,
}

/// Creates the namespace on a dedicated thread and waits for it without blocking the runtime.
/// With `egress`, the egress proxy listener is bound in it too.
pub(crate) async fn create(egress: bool) -> Result<NetNs, SandboxError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hearth-netns".into())
        .spawn(move || {
            let _ = tx.send(create_on_this_thread(egress));
        })
        .map_err(|e| SandboxError::NetNs(format!("starting the netns thread: {e}")))?;
    rx.await
        .map_err(|_| SandboxError::NetNs("netns thread ended without an answer".into()))?
}

/// Runs on a throwaway thread: it leaves the thread in the new namespace for good.
fn create_on_this_thread(egress: bool) -> Result<NetNs, SandboxError> {
    let err = |step: &str, e: &dyn std::fmt::Display| SandboxError::NetNs(format!("{step}: {e}"));
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| err("unshare(CLONE_NEWNET)", &e))?;
    sys::interface_up("lo").map_err(|e| err("bringing lo up", &e))?;
    let bind = |addr: &str| {
        let l = TcpListener::bind(addr).map_err(|e| err(&format!("binding {addr}"), &e))?;
        l.set_nonblocking(true)
            .map_err(|e| err("non-blocking listener", &e))?;
        Ok::<_, SandboxError>(l)
    };
    let listener = bind(RUNTIME_API_ADDR)?;
    let egress = egress.then(|| bind(EGRESS_PROXY_ADDR)).transpose()?;
    let fd = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| err("opening /proc/thread-self/ns/net", &e))?;
    Ok(NetNs {
        listener,
        egress,
        fd: fd.into(),
    })
}
