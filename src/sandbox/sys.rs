//! The few syscalls the sandbox needs that `nix` does not wrap safely.
//!
//! Each wrapper is small, returns `io::Result`, and says why its `unsafe` block is sound.
//! This is the only module of the crate that may use `unsafe`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use nix::unistd::ForkResult;

/// Turns a C-style return value (`-1` and `errno` on failure) into a `Result`.
fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `pidfd_open(2)`: a file descriptor that refers to exactly this process, immune to pid reuse.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: the syscall takes two integers and only returns a new descriptor (or -1).
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(2)` with no `siginfo`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: Signal) -> io::Result<()> {
    let null = std::ptr::null::<libc::siginfo_t>();
    // SAFETY: a borrowed (so open) descriptor, a valid signal number and a null siginfo
    // pointer, which the syscall documents as "behave like kill(2)".
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig as libc::c_int,
            null,
            0,
        )
    })?;
    Ok(())
}

/// Whether the process behind `pidfd` has exited (a pidfd polls readable then); no waiting.
pub fn pidfd_exited(pidfd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` that outlives the call, count 1, timeout 0 (no blocking).
    let ready = cvt(unsafe { libc::poll(&mut pfd, 1, 0) }.into())?;
    Ok(ready > 0)
}

/// Sets `IFF_UP` on the interface `name` of the calling thread's network namespace.
pub fn interface_up(name: &str) -> io::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let mut req = ifreq_for(name)?;
    // SAFETY: `req` is a properly initialised `ifreq` that outlives the call; SIOCGIFFLAGS
    // only writes `ifr_flags` inside it.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) }.into())?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds the flags member.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }.into())?;
    Ok(())
}

/// An `ifreq` naming `name` (which must fit, with its NUL, in `IFNAMSIZ`).
fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    if name.len() >= libc::IFNAMSIZ || name.as_bytes().contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: `ifreq` is plain old data (arrays, integers, a union of those); all-zero
    // bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

/// `fork(2)`, refused unless the caller is single-threaded (checked via `/proc/self/task`).
pub fn fork_single_threaded() -> io::Result<ForkResult> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::other(format!(
            "fork from a process with {threads} threads"
        )));
    }
    // SAFETY: the process has exactly one thread (checked just above, and the sandbox
    // helper never starts any), so the child inherits no lock held by another thread and may
    // allocate freely.
    Ok(unsafe { nix::unistd::fork() }?)
}

/// Takes ownership of a descriptor inherited from the agent by number, if it is open.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 3 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: F_GETFD only inspects the descriptor table.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) }.into())?;
    // SAFETY: the descriptor is open (checked above) and was passed by the agent for the
    // helper alone; it is taken once, at startup, before anything else could have claimed it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `fds` survive the `execve` of `cmd` (clears `FD_CLOEXEC` in the child only).
pub fn keep_fds_across_exec(cmd: &mut tokio::process::Command, fds: [RawFd; 2]) {
    // SAFETY: the closure runs in the forked child before exec; it only calls fcntl(2), which
    // is async-signal-safe, and allocates nothing. Descriptor flags live in the child's own
    // copy of the descriptor table, so the agent's descriptors stay close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            for fd in fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Drops every capability from the bounding set (stops at the first unknown capability).
pub fn drop_bounding_set() -> io::Result<()> {
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) && cap > 0 {
                return Ok(()); // past CAP_LAST_CAP
            }
            return Err(err);
        }
    }
    Ok(())
}

/// Clears the ambient capability set.
pub fn clear_ambient_caps() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    cvt(ret.into()).map(drop)
}

/// Marks every descriptor from `first` up close-on-exec (`close_range(2)`).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    let flags = libc::CLOSE_RANGE_CLOEXEC as libc::c_int;
    // SAFETY: integer arguments only; no descriptor is closed, so no owner is invalidated.
    cvt(unsafe { libc::close_range(first, u32::MAX, flags) }.into()).map(drop)
}

/// Restores what an exec'd program expects: default SIGPIPE (Rust ignores it, and ignored
/// signals survive exec) and an empty signal mask.
pub fn reset_signals() -> io::Result<()> {
    set_default(Signal::SIGPIPE)?;
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(())
}

fn set_default(sig: Signal) -> io::Result<()> {
    // SAFETY: installing SIG_DFL registers no Rust handler, so no handler can run code that
    // is not async-signal-safe.
    unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) }?;
    Ok(())
}

/// Ends the process as if killed by `sig` (so its parent sees the same signal); falls back
/// to exit code 128+sig for signals whose default action does not terminate.
pub fn die_by_signal(sig: i32) -> ! {
    if let Ok(signal) = Signal::try_from(sig) {
        let _ = set_default(signal);
        let mut set = SigSet::empty();
        set.add(signal);
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
        let _ = nix::sys::signal::raise(signal);
    }
    std::process::exit(128 + sig)
}

/// A raw syscall with one argument (the rest zero), for tests of the seccomp filter; returns
/// its errno, `None` on success.
#[cfg(test)]
pub fn raw_syscall_errno(nr: libc::c_long, arg0: libc::c_long) -> Option<i32> {
    // SAFETY: only called by tests with syscalls that, given these arguments, either fail or
    // touch nothing but the calling thread (no memory is passed: every pointer is null).
    let ret = unsafe { libc::syscall(nr, arg0, 0, 0, 0, 0, 0) };
    (ret < 0).then(|| io::Error::last_os_error().raw_os_error().unwrap_or(0))
}
