//! boto3 compatibility: runs `tests/boto3_compat.py` (boto3 used exactly as a user would)
//! against a real `hearth serve`.
//!
//! The Python venv with boto3 lives at `<CARGO_TARGET_TMPDIR>/venv` and is made once, under
//! a lock file, so test processes that race for it wait for one another.

mod common;

use common::{Hearth, example, repo};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The boto3 the test runs (pinned; botocore follows boto3's own requirement).
const BOTO3: &str = "boto3==1.44.5";
/// Longest the script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// The venv's python, with boto3 (made once, shared).
fn ensure_venv() -> PathBuf {
    common::python_venv("venv", BOTO3)
}

/// Runs the script to completion (or SCRIPT_TIMEOUT); returns (success, stdout, stderr).
fn run_script(python: &Path, h: &Hearth) -> (bool, String, String) {
    let out_path = h.dir.path().join("boto3.stdout");
    let err_path = h.dir.path().join("boto3.stderr");
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(repo().join("tests/boto3_compat.py"))
        .arg(&h.endpoint)
        .arg(example("echo-sh").parent().unwrap())
        .env("HEARTH_ENDPOINT", &h.endpoint)
        // Only the explicit client settings may count: no profile, no proxy for loopback.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    for var in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CA_BUNDLE",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let ok = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (ok, read(&out_path), read(&err_path))
}

#[test]
fn boto3_compat() {
    let python = ensure_venv();
    let h = Hearth::start();
    let started = Instant::now();
    let (ok, stdout, stderr) = run_script(&python, &h);
    let elapsed = started.elapsed();
    assert!(
        ok,
        "boto3_compat.py failed (or timed out after {SCRIPT_TIMEOUT:?}) in {elapsed:.1?}\n\
         --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- hearth serve log ---\n{}",
        h.log()
    );
    println!("{stdout}");
    eprintln!("boto3_compat.py passed in {elapsed:.1?}");
}
