//! Checks of specs and configs, before anything is created.

use super::{DriverConfig, SandboxError, SandboxSpec};

/// Longest instance id (it is also the sandbox's hostname, at most 64 bytes).
const MAX_ID_LEN: usize = 64;

/// A name usable as one path component and as a hostname.
fn is_safe_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !name.is_empty()
        && name.len() <= MAX_ID_LEN
        && !name.starts_with('.')
        && name.chars().all(ok_char)
}

pub(crate) fn spec(spec: &SandboxSpec) -> Result<(), SandboxError> {
    let bad = |msg: String| Err(SandboxError::InvalidSpec(msg));
    if !is_safe_name(&spec.instance_id) {
        return bad(format!(
            "instance id {:?}: want 1-64 of [A-Za-z0-9._-], not starting with '.'",
            spec.instance_id
        ));
    }
    if spec.argv.is_empty() {
        return bad("empty argv".into());
    }
    if let Some(arg) = spec.argv.iter().find(|a| a.contains('\0')) {
        return bad(format!("argv element {arg:?} contains NUL"));
    }
    if let Some((k, _)) = spec
        .env
        .iter()
        .find(|(k, v)| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0'))
    {
        return bad(format!(
            "environment variable {k:?}: empty name, '=' in the name, or NUL"
        ));
    }
    if spec.memory_mb == 0 || spec.tmp_size_mb == 0 {
        return bad("memory_mb and tmp_size_mb must be at least 1".into());
    }
    Ok(())
}

pub(crate) fn config(cfg: &DriverConfig) -> Result<(), SandboxError> {
    let bad = |msg: String| Err(SandboxError::InvalidConfig(msg));
    if cfg.uid == 0 || cfg.gid == 0 {
        return bad(format!(
            "uid {} / gid {}: the sandbox user must not be root",
            cfg.uid, cfg.gid
        ));
    }
    if !is_safe_name(&cfg.cgroup_prefix) {
        return bad(format!(
            "cgroup prefix {:?}: want 1-64 of [A-Za-z0-9._-]",
            cfg.cgroup_prefix
        ));
    }
    // The helper, pid 1 and the runtime.
    if cfg.pids_max < 3 {
        return bad(format!("pids_max {} is below 3", cfg.pids_max));
    }
    if !cfg.rootfs_mountpoint.is_absolute() {
        return bad(format!(
            "rootfs mount point {} is not absolute",
            cfg.rootfs_mountpoint.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_safe_name;

    #[test]
    fn names() {
        assert!(is_safe_name("fn-1.abc_2"));
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }
}
