//! Test harness: a real `hearth serve` process on loopback port 0 with its own data
//! directory and cgroup prefix, killed and cleaned up on drop even when a test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_hearth");

/// Runtimes are shared by all tests (installing awslambdaric once).
pub fn runtimes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runtimes")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running `hearth serve`.
pub struct Hearth {
    child: Option<Child>,
    pub endpoint: String,
    pub admin: String,
    pub dir: tempfile::TempDir,
    pub prefix: String,
    extra_config: String,
    /// Extra environment of the server process (fault injection in tests).
    pub env: Vec<(String, String)>,
    /// Public listen address (`127.0.0.1:0` unless started with [`Hearth::start_opts`]).
    listen: String,
    /// Extra `serve` arguments (e.g. `--agent URL`).
    args: Vec<String>,
    /// The subcommand: `serve`, or `control` / `router` (multi-process mode).
    command: String,
    http: ureq::Agent,
}

/// An HTTP answer.
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn error_type(&self) -> &str {
        self.header("x-amzn-errortype").unwrap_or("")
    }
}

impl Hearth {
    pub fn start() -> Hearth {
        Self::start_with("")
    }

    /// Starts with a config file holding `extra_config` (runtimes dir, cgroup prefix and log
    /// level come from `HEARTH_*` variables).
    pub fn start_with(extra_config: &str) -> Hearth {
        Self::start_env(extra_config, &[])
    }

    /// Starts with a config and extra environment variables.
    pub fn start_env(extra_config: &str, env: &[(&str, &str)]) -> Hearth {
        Self::start_opts(extra_config, env, "127.0.0.1:0", &[])
    }

    /// Starts with a config, extra environment, a public listen address and extra `serve`
    /// arguments.
    pub fn start_opts(
        extra_config: &str,
        env: &[(&str, &str)],
        listen: &str,
        args: &[&str],
    ) -> Hearth {
        Self::start_command("serve", extra_config, env, listen, args)
    }

    /// Starts `hearth COMMAND` (`serve`, `control` or `router`: all take `--config`,
    /// `--data-dir`, `--listen`, `--admin-listen` and `--ready-file`).
    pub fn start_command(
        command: &str,
        extra_config: &str,
        env: &[(&str, &str)],
        listen: &str,
        args: &[&str],
    ) -> Hearth {
        let dir = tempfile::Builder::new()
            .prefix("hearth-test-")
            .tempdir()
            .unwrap();
        let prefix = format!(
            "hearth-test-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut h = Hearth {
            child: None,
            endpoint: String::new(),
            admin: String::new(),
            dir,
            prefix,
            extra_config: extra_config.to_string(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            listen: listen.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            command: command.to_string(),
            http,
        };
        h.launch();
        h
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn launch(&mut self) {
        let config = self.dir.path().join("hearth.toml");
        std::fs::write(&config, &self.extra_config).unwrap();
        let ready = self.dir.path().join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(BIN)
            .arg(&self.command)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen", &self.listen])
            .args(["--admin-listen", "127.0.0.1:0", "--ready-file"])
            .arg(&ready)
            .args(&self.args)
            .env("HEARTH_RUNTIMES_DIR", runtimes_dir())
            .env("HEARTH_CGROUP_PREFIX", &self.prefix)
            .env("HEARTH_LOG", "info,hearth::access=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn hearth serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(300);
        while !ready.exists() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "hearth serve exited ({status}) before ready:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "hearth serve not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
        self.endpoint = format!("http://{}", r["listen"].as_str().unwrap());
        self.admin = format!("http://{}", r["admin_listen"].as_str().unwrap());
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGTERM, wait, and return the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("hearth serve did not stop after SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the server to exit by itself (e.g. an injected fault killed it).
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "hearth serve did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: the process dies at once (no drain, no cleanup).
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Starts again on the same data directory (after it stopped or died).
    pub fn launch_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.launch();
    }

    /// Stops and starts again on the same data directory.
    pub fn restart(&mut self) {
        assert!(self.stop().success(), "{}", self.log());
        self.launch();
    }

    /// Runs a client command (`hearth fn …`, `hearth invoke …`) against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("HEARTH_ENDPOINT", &self.endpoint)
            .output()
            .unwrap()
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let url = format!("{}{path}", self.endpoint);
        let mut req = http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .http
            .run(req.body(body.to_vec()).unwrap())
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn get_admin(&self, path: &str) -> Resp {
        let resp = self
            .http
            .get(format!("{}{path}", self.admin))
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Resp {
            status,
            headers,
            body: resp.into_body().read_to_vec().unwrap(),
        }
    }

    pub fn invoke(&self, name: &str, payload: &str) -> Resp {
        self.invoke_with(name, &[], payload)
    }

    pub fn invoke_with(&self, name: &str, headers: &[(&str, &str)], payload: &str) -> Resp {
        self.request(
            "POST",
            &format!("/2015-03-31/functions/{name}/invocations"),
            headers,
            payload.as_bytes(),
        )
    }

    /// CreateFunction with a zip, through the management API.
    pub fn create(&self, body: serde_json::Value) -> Resp {
        self.request(
            "POST",
            "/2015-03-31/functions",
            &[],
            body.to_string().as_bytes(),
        )
    }

    /// Polls GetFunction until `name` is neither `Pending` nor `InProgress` (like boto3's
    /// waiters); returns its configuration.
    pub fn wait_settled(&self, name: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = self
                .request("GET", &format!("/2015-03-31/functions/{name}"), &[], b"")
                .json()["Configuration"]
                .clone();
            if c["State"] != "Pending" && c["LastUpdateStatus"] != "InProgress" {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "{name} still {c}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Deploys a sample from `examples/functions/` (or any directory) with the CLI.
    pub fn deploy(&self, name: &str, runtime: &str, handler: &str, code: &Path, extra: &[&str]) {
        let mut args = vec![
            "fn",
            "create",
            name,
            "--runtime",
            runtime,
            "--code",
            code.to_str().unwrap(),
        ];
        if !handler.is_empty() {
            args.extend(["--handler", handler]);
        }
        args.extend(extra);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "fn create {name}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Live sandboxes of this server (its instance cgroups; waiting stem cells excluded).
    pub fn instance_count(&self) -> usize {
        self.cgroup_dirs(false).len()
    }

    /// Host processes that belong to this server's sandboxes (via its cgroups; the helpers
    /// of waiting stem cells excluded).
    pub fn sandbox_pids(&self) -> Vec<i32> {
        self.cgroup_dirs(false)
            .iter()
            .flat_map(|d| procs_of(d))
            .collect()
    }

    /// Helper processes of this server's waiting stem cells.
    pub fn stem_cell_pids(&self) -> Vec<i32> {
        self.cgroup_dirs(true)
            .iter()
            .flat_map(|d| procs_of(d))
            .collect()
    }

    /// This server's instance cgroups in the pids hierarchy (`stem`: the waiting stem cells'
    /// instead).
    fn cgroup_dirs(&self, stem: bool) -> Vec<PathBuf> {
        let root = PathBuf::from("/sys/fs/cgroup/pids").join(&self.prefix);
        std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(hearth::sandbox::STEM_CELL_PREFIX) == stem
            })
            .map(|e| e.path())
            .collect()
    }

    /// Whether any cgroup of this server's prefix is left (after it stopped).
    pub fn cgroups_left(&self) -> Vec<PathBuf> {
        ["memory", "pids", "cpu"]
            .iter()
            .map(|c| PathBuf::from("/sys/fs/cgroup").join(c).join(&self.prefix))
            .filter(|d| d.exists())
            .collect()
    }
}

fn procs_of(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .collect()
}

impl Drop for Hearth {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        cleanup_cgroups(&self.prefix);
    }
}

/// A loopback port that was free a moment ago (for a process that must be addressed before
/// it starts, e.g. the router agents fetch code from).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `hearth agent` (multi-process mode), with its own data directory and cgroup
/// prefix; killed and cleaned up on drop.
pub struct AgentProc {
    child: Option<Child>,
    /// `http://ADDR:PORT` of its router-to-agent port.
    pub url: String,
    pub admin: String,
    pub dir: tempfile::TempDir,
    pub prefix: String,
    http: ureq::Agent,
}

impl AgentProc {
    /// Starts an agent fetching code from `code_url`, with `extra_config` as its config file.
    pub fn start(code_url: &str, extra_config: &str) -> AgentProc {
        let dir = tempfile::Builder::new()
            .prefix("hearth-agent-test-")
            .tempdir()
            .unwrap();
        let prefix = format!(
            "hearth-test-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, extra_config).unwrap();
        let ready = dir.path().join("ready.json");
        let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
        let child = Command::new(BIN)
            .arg("agent")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--code-url", code_url, "--ready-file"])
            .arg(&ready)
            .env("HEARTH_RUNTIMES_DIR", runtimes_dir())
            .env("HEARTH_CGROUP_PREFIX", &prefix)
            .env("HEARTH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn hearth agent");
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut a = AgentProc {
            child: Some(child),
            url: String::new(),
            admin: String::new(),
            dir,
            prefix,
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        while !ready.exists() {
            if let Some(status) = a.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("hearth agent exited ({status}) before ready:\n{}", a.log());
            }
            assert!(Instant::now() < deadline, "agent not ready:\n{}", a.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
        a.url = format!("http://{}", r["listen"].as_str().unwrap());
        a.admin = format!("http://{}", r["admin_listen"].as_str().unwrap());
        a
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// `GET /v1/state` (HTTP/1.1 on the agent port).
    pub fn state(&self) -> serde_json::Value {
        let body = self
            .http
            .get(format!("{}/v1/state", self.url))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// Instances (starting, busy, idle) the agent holds.
    pub fn instances(&self) -> u64 {
        self.state()["instances"].as_u64().unwrap()
    }

    /// SIGKILL (no cleanup by the agent itself).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
        cleanup_cgroups(&self.prefix);
    }
}

/// Kills whatever is left in `<controller>/<prefix>/*` and removes the directories.
pub fn cleanup_cgroups(prefix: &str) {
    for controller in ["memory", "pids", "cpu", "cpuacct", "cpu,cpuacct"] {
        let root = PathBuf::from("/sys/fs/cgroup")
            .join(controller)
            .join(prefix);
        if !root.exists() {
            continue;
        }
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                kill_and_remove(&entry.path());
            }
        }
        kill_and_remove(&root);
    }
}

fn kill_and_remove(dir: &Path) {
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sample functions.
pub fn example(name: &str) -> PathBuf {
    repo().join("examples/functions").join(name)
}

/// The hello-rs `bootstrap`, built on demand, in a directory ready to deploy.
pub fn hello_rs_package() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target"));
    let bin = target.join("debug/bootstrap");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "hello-rs"])
            .current_dir(repo())
            .status()
            .unwrap();
        assert!(status.success(), "cargo build -p hello-rs failed");
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hello-rs-pkg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&bin, dir.join("bootstrap")).unwrap();
    dir
}

/// Builds a zip in memory from (name, unix mode, contents); mode 0o120xxx makes a symlink
/// entry whose target is the contents.
pub fn zip_of(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, mode, data) in files {
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode & 0o7777);
            if mode & 0o170000 == 0o120000 {
                w.add_symlink(*name, std::str::from_utf8(data).unwrap(), opts)
                    .unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap();
    }
    buf.into_inner()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Writes an executable `bootstrap` into `dir`.
pub fn write_bootstrap(dir: &std::path::Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("bootstrap");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A bash bootstrap that answers every event with a fixed JSON body after running `before`.
pub fn constant_bootstrap(body: &str, before: &str) -> String {
    format!(
        r#"#!/usr/bin/bash
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while true; do
  id=$(curl -sS -D - -o /dev/null "$api/next" | tr -d '\r' | awk -F': ' 'tolower($1)=="lambda-runtime-aws-request-id" {{print $2}}')
  {before}
  curl -sS -o /dev/null -X POST "$api/$id/response" -d "{body}"
done
"#
    )
}

/// The python of a venv under the test target's tmp dir with `requirement` installed (pinned,
/// e.g. `boto3==1.44.5`), made once and shared by test binaries under a file lock; a changed
/// requirement rebuilds it.
pub fn python_venv(name: &str, requirement: &str) -> PathBuf {
    use nix::fcntl::{Flock, FlockArg};
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = tmp.join(name);
    let python = venv.join("bin/python");
    let marker = venv.join(".hearth-ready");
    let ready = || std::fs::read_to_string(&marker).is_ok_and(|s| s == requirement);
    if ready() {
        return python;
    }
    std::fs::create_dir_all(&tmp).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(tmp.join(format!("{name}.lock")))
        .unwrap();
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("lock the venv");
    if ready() {
        return python;
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).unwrap();
    }
    let started = Instant::now();
    run_ok(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run_ok(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        requirement,
    ]));
    std::fs::write(&marker, requirement).unwrap();
    eprintln!(
        "created {} with {requirement} in {:.1?}",
        venv.display(),
        started.elapsed()
    );
    python
}

/// Runs a command to completion and panics with its output unless it succeeded.
pub fn run_ok(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
