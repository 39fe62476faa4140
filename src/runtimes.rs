//! Language runtimes: which ids exist, how a sandbox starts each, and preparing their files
//! (DESIGN.md "Runtimes").

use std::path::{Path, PathBuf};

/// Runtime ids hearth runs.
pub const SUPPORTED: &[&str] = &["provided", "provided.al2023", "python3.11"];

/// The Python runtime interface client installed for `python3.11` (pinned for reproducibility).
pub const AWSLAMBDARIC: &str = "awslambdaric==4.2.2";

/// How a sandbox starts a runtime.
#[derive(Debug, Clone)]
pub struct Launch {
    /// argv inside the sandbox.
    pub argv: Vec<String>,
    /// The prepared runtime directory to mount at `/var/runtime`, if the runtime has one.
    pub runtime_dir: Option<PathBuf>,
    /// Environment the runtime adds to the Lambda bootstrap environment.
    pub env: Vec<(String, String)>,
}

/// A runtime could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("unsupported runtime {0:?}")]
    Unsupported(String),
    #[error("preparing runtime {runtime}: {detail}")]
    Install { runtime: String, detail: String },
}

/// Whether `id` is a supported runtime.
pub fn is_supported(id: &str) -> bool {
    SUPPORTED.contains(&id)
}

/// The runtime's launch recipe, given a prepared runtimes directory.
pub fn launch(
    runtimes_dir: &Path,
    python: &Path,
    id: &str,
    handler: &str,
) -> Result<Launch, RuntimeError> {
    match id {
        "provided" | "provided.al2023" => Ok(Launch {
            argv: vec!["/var/task/bootstrap".into()],
            runtime_dir: None,
            env: vec![],
        }),
        "python3.11" => Ok(Launch {
            argv: vec![
                python.display().to_string(),
                "-m".into(),
                "awslambdaric".into(),
                handler.into(),
            ],
            runtime_dir: Some(runtimes_dir.join(id)),
            env: vec![
                ("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.11".into()),
                ("PYTHONPATH".into(), "/var/runtime".into()),
            ],
        }),
        other => Err(RuntimeError::Unsupported(other.into())),
    }
}

/// Prepares a runtime in `runtimes_dir` unless it is already there. Safe to call from
/// several processes at once: the install goes to a temp dir that is renamed into place.
pub fn ensure(runtimes_dir: &Path, python: &Path, id: &str) -> Result<(), RuntimeError> {
    match id {
        "provided" | "provided.al2023" => Ok(()),
        "python3.11" => ensure_python(runtimes_dir, python, id),
        other => Err(RuntimeError::Unsupported(other.into())),
    }
}

fn ensure_python(runtimes_dir: &Path, python: &Path, id: &str) -> Result<(), RuntimeError> {
    let target = runtimes_dir.join(id);
    if target.join("awslambdaric").is_dir() {
        return Ok(());
    }
    let fail = |detail: String| RuntimeError::Install {
        runtime: id.into(),
        detail,
    };
    std::fs::create_dir_all(runtimes_dir)
        .map_err(|e| fail(format!("{}: {e}", runtimes_dir.display())))?;
    let tmp = runtimes_dir.join(format!(".{id}.tmp-{}", uuid::Uuid::new_v4().simple()));
    tracing::info!(runtime = id, dir = %target.display(), "preparing runtime (pip install {AWSLAMBDARIC})");
    let out = std::process::Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
        ])
        .args(["--only-binary=:all:", "--target"])
        .arg(&tmp)
        .arg(AWSLAMBDARIC)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .output()
        .map_err(|e| fail(format!("running {} -m pip: {e}", python.display())))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(fail(format!(
            "pip: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    make_world_readable(&tmp).map_err(|e| fail(e.to_string()))?;
    match std::fs::rename(&tmp, &target) {
        Ok(()) => Ok(()),
        // Another process finished first; its copy is as good as ours.
        Err(_) if target.join("awslambdaric").is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(fail(format!("rename into {}: {e}", target.display()))),
    }
}

/// The sandbox user must read the runtime's files.
fn make_world_readable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode();
        let extra = if meta.is_dir() {
            0o755
        } else {
            0o444 | (mode & 0o111)
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | extra))?;
        if meta.is_dir() {
            make_world_readable(&path)?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}
