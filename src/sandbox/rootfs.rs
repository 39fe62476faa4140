//! The sandbox's root filesystem, built from an allow-list on a tmpfs (DESIGN.md "Sandbox
//! root filesystem"). Runs in the sandbox's pid 1, inside its private mount namespace.

use std::io;
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::pivot_root;

use super::protocol::InitRequest;

/// The sandbox user's name in `/etc/passwd` (Lambda's).
pub const SANDBOX_USER: &str = "sbx_user1051";

/// Host files bind-mounted read-only when they exist: CA certificates, the loader cache, and
/// Debian's alternatives links (`/usr/bin/awk` and friends point through `/etc/alternatives`).
const OPTIONAL_HOST_FILES: [&str; 3] = ["/etc/ssl/certs", "/etc/ld.so.cache", "/etc/alternatives"];

/// Host devices bind-mounted into the sandbox's `/dev`.
const DEVICES: [&str; 4] = ["null", "zero", "random", "urandom"];

/// A failed filesystem step, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{step} {}: {source}", path.display())]
pub struct RootfsError {
    step: &'static str,
    path: PathBuf,
    source: io::Error,
}

fn fail(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RootfsError {
    let path = path.to_path_buf();
    move |source| RootfsError { step, path, source }
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from(e)
}

/// Builds the whole tree under `req.rootfs_mountpoint`; everything read-only except `/tmp`
/// (and the root itself is made read-only by [`enter`]).
pub(crate) fn build(req: &InitRequest) -> Result<(), RootfsError> {
    let root = req.rootfs_mountpoint.as_path();
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount_tmpfs(root, "mode=0755,size=1m", nosuid_nodev)?;
    // /usr and the merged-usr links
    bind_ro(Path::new("/usr"), &root.join("usr"))?;
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("sbin", "usr/sbin"),
    ] {
        let path = root.join(link);
        symlink(target, &path).map_err(fail("symlink", &path))?;
    }
    // /etc: synthesized files plus a few read-only host files
    write_etc(root, req)?;
    for host in OPTIONAL_HOST_FILES {
        if Path::new(host).exists() {
            bind_ro(Path::new(host), &root.join(&host[1..]))?;
        }
    }
    // code, runtime, layers
    bind_ro(&req.code_dir, &root.join("var/task"))?;
    match &req.runtime_dir {
        Some(dir) => bind_ro(dir, &root.join("var/runtime"))?,
        None => mkdir(&root.join("var/runtime"))?,
    }
    mkdir(&root.join("opt"))?;
    // /proc of the sandbox's own pid namespace (we are its pid 1)
    let proc = root.join("proc");
    mkdir(&proc)?;
    let flags = nosuid_nodev | MsFlags::MS_NOEXEC;
    mount(Some("proc"), &proc, Some("proc"), flags, None::<&str>)
        .map_err(|e| fail("mount proc", &proc)(errno(e)))?;
    // /dev and /tmp
    build_dev(&root.join("dev"))?;
    let tmp = root.join("tmp");
    mount_tmpfs(
        &tmp,
        &format!("mode=1777,size={}m", req.tmp_size_mb),
        nosuid_nodev,
    )?;
    Ok(())
}

/// A minimal `/dev`: host null, zero, random, urandom bound in; fd and stdio links.
fn build_dev(dev: &Path) -> Result<(), RootfsError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mount_tmpfs(dev, "mode=0755,size=64k", flags | MsFlags::MS_NODEV)?;
    for name in DEVICES {
        let target = dev.join(name);
        std::fs::File::create(&target).map_err(fail("create", &target))?;
        let host = Path::new("/dev").join(name);
        mount(
            Some(&host),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| fail("bind", &target)(errno(e)))?;
        remount(&target, MsFlags::MS_BIND | flags)?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let path = dev.join(link);
        symlink(target, &path).map_err(fail("symlink", &path))?;
    }
    remount(
        dev,
        MsFlags::MS_BIND | MsFlags::MS_RDONLY | flags | MsFlags::MS_NODEV,
    )
}

/// `/etc/{passwd,group,hosts,resolv.conf,nsswitch.conf}`.
fn write_etc(root: &Path, req: &InitRequest) -> Result<(), RootfsError> {
    let etc = root.join("etc");
    mkdir(&etc)?;
    let (uid, gid) = (req.uid, req.gid);
    let files = [
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/usr/sbin/nologin\n\
                 {SANDBOX_USER}:x:{uid}:{gid}::/tmp:/usr/sbin/nologin\n"
            ),
        ),
        ("group", format!("root:x:0:\n{SANDBOX_USER}:x:{gid}:\n")),
        ("hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n".to_owned()),
        (
            "resolv.conf",
            "# no DNS inside the sandbox by default\n".to_owned(),
        ),
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files dns\n".to_owned(),
        ),
    ];
    for (name, text) in files {
        let path = etc.join(name);
        std::fs::write(&path, text).map_err(fail("write", &path))?;
    }
    Ok(())
}

/// Read-only, nosuid, nodev bind of `src` (a directory or a file) at `dst`.
fn bind_ro(src: &Path, dst: &Path) -> Result<(), RootfsError> {
    let meta = std::fs::metadata(src).map_err(fail("stat", src))?;
    if meta.is_dir() {
        mkdir(dst)?;
    } else {
        if let Some(parent) = dst.parent() {
            mkdir(parent)?;
        }
        std::fs::File::create(dst).map_err(fail("create", dst))?;
    }
    mount(Some(src), dst, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| fail("bind", dst)(errno(e)))?;
    remount(
        dst,
        MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )
}

/// Changes the per-mount flags of the mount at `path`.
fn remount(path: &Path, flags: MsFlags) -> Result<(), RootfsError> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_REMOUNT | flags,
        None::<&str>,
    )
    .map_err(|e| fail("remount", path)(errno(e)))
}

fn mount_tmpfs(path: &Path, data: &str, flags: MsFlags) -> Result<(), RootfsError> {
    mkdir(path)?;
    mount(Some("tmpfs"), path, Some("tmpfs"), flags, Some(data))
        .map_err(|e| fail("mount tmpfs", path)(errno(e)))
}

/// `mkdir -p` with mode 0755.
fn mkdir(path: &Path) -> Result<(), RootfsError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(fail("mkdir", path))
}

/// Makes `root` the process's `/` (pivot_root, old root detached) and the root read-only.
pub(crate) fn enter(root: &Path) -> Result<(), RootfsError> {
    // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then
    // detaches the old root, with no directory for it needed in the new tree.
    std::env::set_current_dir(root).map_err(fail("chdir", root))?;
    pivot_root(".", ".").map_err(|e| fail("pivot_root", root)(errno(e)))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| fail("detach old root", root)(errno(e)))?;
    let slash = Path::new("/");
    std::env::set_current_dir(slash).map_err(fail("chdir", slash))?;
    let ro = MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    remount(slash, ro)
}
