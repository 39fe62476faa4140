//! End to end: deploy the sample functions into a real `hearth serve` and invoke them in
//! real sandboxes.

mod common;

use common::{Hearth, b64, constant_bootstrap, example, hello_rs_package, unb64, write_bootstrap};
use std::time::{Duration, Instant};

fn wait_no_sandbox_processes(h: &Hearth) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !h.sandbox_pids().is_empty() {
        assert!(
            Instant::now() < deadline,
            "sandbox processes survive: {:?}",
            h.sandbox_pids()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn echo_sh_round_trip_and_warm_reuse() {
    let h = Hearth::start();
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    let first = h.invoke("echo", r#"{"a":1,"b":[true,null]}"#);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json(), serde_json::json!({"a":1,"b":[true,null]}));
    assert_eq!(first.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(first.header("x-hearth-cold-start"), Some("true"));
    assert!(first.header("x-amzn-requestid").is_some());
    assert!(first.header("x-amz-function-error").is_none());
    let instance = first.header("x-hearth-instance").unwrap().to_string();
    for i in 0..3 {
        let r = h.invoke("echo", &format!("{{\"i\":{i}}}"));
        assert_eq!(r.json()["i"], i);
        assert_eq!(r.header("x-hearth-cold-start"), Some("false"));
        assert_eq!(r.header("x-hearth-instance"), Some(instance.as_str()));
    }
}

#[test]
fn hello_py_counter_grows_while_warm() {
    let h = Hearth::start();
    h.deploy(
        "hello",
        "python3.11",
        "hello.handler",
        &example("hello-py"),
        &[],
    );
    let mut instance = None;
    for n in 1..=3 {
        let r = h.invoke("hello", r#"{"name":"Ann"}"#);
        assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
        let body = r.json();
        assert_eq!(body["message"], "hello Ann");
        assert_eq!(body["count"], n, "{body}");
        assert_eq!(body["request_id"].as_str(), r.header("x-amzn-requestid"));
        let remaining = body["remaining_ms"].as_i64().unwrap();
        assert!(remaining > 0 && remaining <= 3000, "{remaining}");
        let id = r.header("x-hearth-instance").unwrap().to_string();
        assert_eq!(*instance.get_or_insert(id.clone()), id);
    }
}

#[test]
fn hello_rs_with_lambda_runtime_crate() {
    let h = Hearth::start();
    h.deploy("hello-rs", "provided.al2023", "", &hello_rs_package(), &[]);
    let r = h.invoke("hello-rs", r#"{"name":"Bo"}"#);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
    assert_eq!(r.json()["message"], "hello Bo");
    assert_eq!(r.json()["function_name"], "hello-rs");
    let e = h.invoke("hello-rs", r#"{"fail":true}"#);
    assert_eq!(e.status, 200);
    assert_eq!(e.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(e.json()["errorType"], "HelloError", "{}", e.text());
    // A function error does not cost the instance.
    let again = h.invoke("hello-rs", "{}");
    assert_eq!(
        again.header("x-hearth-instance"),
        r.header("x-hearth-instance")
    );
}

#[test]
fn python_function_error_is_200_with_error_header() {
    let h = Hearth::start();
    h.deploy(
        "hello",
        "python3.11",
        "hello.handler",
        &example("hello-py"),
        &[],
    );
    let r = h.invoke("hello", r#"{"fail":true}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let body = r.json();
    assert_eq!(body["errorType"], "HelloError", "{body}");
    assert_eq!(body["errorMessage"], "asked to fail");
}

#[test]
fn update_code_then_invoke_runs_new_code() {
    let h = Hearth::start();
    let dir = h.dir.path().join("v");
    write_bootstrap(&dir, &constant_bootstrap(r#"{\"v\":1}"#, ""));
    h.deploy("f", "provided", "", &dir, &[]);
    let first = h.invoke("f", "{}");
    assert_eq!(first.json()["v"], 1, "{}", h.log());
    write_bootstrap(&dir, &constant_bootstrap(r#"{\"v\":2}"#, ""));
    let out = h.cli(&["fn", "update-code", "f", "--code", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = h.invoke("f", "{}");
    assert_eq!(second.json()["v"], 2);
    assert_eq!(second.header("x-hearth-cold-start"), Some("true"));
    assert_ne!(
        second.header("x-hearth-instance"),
        first.header("x-hearth-instance")
    );
}

#[test]
fn update_configuration_then_invoke_sees_new_environment() {
    let h = Hearth::start();
    let dir = h.dir.path().join("env");
    write_bootstrap(
        &dir,
        &constant_bootstrap(
            r#"{\"greeting\":\"$GREETING\",\"mem\":\"$AWS_LAMBDA_FUNCTION_MEMORY_SIZE\"}"#,
            "",
        ),
    );
    h.deploy("env", "provided", "", &dir, &["--env", "GREETING=hi"]);
    assert_eq!(h.invoke("env", "{}").json()["greeting"], "hi");
    let out = h.cli(&[
        "fn",
        "update-config",
        "env",
        "--env",
        "GREETING=ho",
        "--memory",
        "256",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = h.invoke("env", "{}");
    assert_eq!(r.json()["greeting"], "ho");
    assert_eq!(r.json()["mem"], "256");
}

#[test]
fn bootstrap_environment_is_lambdas() {
    let h = Hearth::start();
    let dir = h.dir.path().join("envdump");
    let keys = [
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_REGION",
        "TZ",
        "PWD",
    ];
    let fields: Vec<String> = keys
        .iter()
        .map(|k| format!("\\\"{k}\\\":\\\"${k}\\\""))
        .collect();
    let body = format!("{{{},\\\"uid\\\":\\\"$(id -u)\\\"}}", fields.join(","));
    write_bootstrap(&dir, &constant_bootstrap(&body, "PWD=$(pwd)"));
    h.deploy("envdump", "provided", "", &dir, &["--memory", "512"]);
    let r = h.invoke("envdump", "{}");
    let v = r.json();
    assert_eq!(v["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:9001");
    assert_eq!(v["LAMBDA_TASK_ROOT"], "/var/task");
    assert_eq!(v["AWS_LAMBDA_FUNCTION_NAME"], "envdump");
    assert_eq!(v["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(v["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
    assert_eq!(v["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/envdump");
    assert_eq!(v["AWS_REGION"], "us-east-1");
    assert_eq!(v["TZ"], ":UTC");
    assert_eq!(v["PWD"], "/var/task");
    assert_ne!(v["uid"], "0", "runtime must not run as root");
}

#[test]
fn log_tail_holds_only_its_own_invocation() {
    let h = Hearth::start();
    h.deploy(
        "hello",
        "python3.11",
        "hello.handler",
        &example("hello-py"),
        &[],
    );
    let a = h.invoke("hello", "{}");
    let a_id = a.header("x-amzn-requestid").unwrap().to_string();
    let b = h.invoke_with("hello", &[("X-Amz-Log-Type", "Tail")], "{}");
    let b_id = b.header("x-amzn-requestid").unwrap().to_string();
    let tail = String::from_utf8(unb64(b.header("x-amz-log-result").expect("log result"))).unwrap();
    assert!(tail.contains(&format!("START RequestId: {b_id}")), "{tail}");
    assert!(
        tail.contains(&format!("hello-py got request {b_id}")),
        "{tail}"
    );
    assert!(
        tail.contains(&format!("REPORT RequestId: {b_id}")),
        "{tail}"
    );
    assert!(
        !tail.contains(&a_id),
        "tail leaks the previous invocation: {tail}"
    );
    assert!(tail.len() <= 4096);
    assert!(a.header("x-amz-log-result").is_none());
}

#[test]
fn timeout_kills_the_instance_and_every_process() {
    let h = Hearth::start();
    h.deploy(
        "slow",
        "python3.11",
        "hello.handler",
        &example("hello-py"),
        &["--timeout", "1"],
    );
    let warm = h.invoke("slow", "{}");
    assert_eq!(warm.status, 200);
    let started = Instant::now();
    let r = h.invoke("slow", r#"{"sleep": 30}"#);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(r.json()["errorType"], "Sandbox.Timedout");
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Task timed out after 1.00 seconds")
    );
    wait_no_sandbox_processes(&h);
    let next = h.invoke("slow", "{}");
    assert_eq!(next.status, 200);
    assert_eq!(next.header("x-hearth-cold-start"), Some("true"));
    assert_eq!(next.json()["count"], 1);
    assert_ne!(
        next.header("x-hearth-instance"),
        warm.header("x-hearth-instance")
    );
}

#[test]
fn timeout_kills_background_children_too() {
    let h = Hearth::start();
    let dir = h.dir.path().join("bg");
    write_bootstrap(
        &dir,
        &constant_bootstrap("{}", "(sleep 1000 &) ; sleep 1000"),
    );
    h.deploy("bg", "provided", "", &dir, &["--timeout", "1"]);
    let r = h.invoke("bg", "{}");
    assert_eq!(r.json()["errorType"], "Sandbox.Timedout");
    wait_no_sandbox_processes(&h);
}

#[test]
fn runtime_exit_is_runtime_exit_error() {
    let h = Hearth::start();
    let dir = h.dir.path().join("crash");
    write_bootstrap(&dir, &constant_bootstrap("{}", "echo dying; exit 1"));
    h.deploy("crash", "provided", "", &dir, &[]);
    let r = h.invoke_with("crash", &[("X-Amz-Log-Type", "Tail")], "{}");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(r.json()["errorType"], "Runtime.ExitError");
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .unwrap()
            .contains("exit status 1"),
        "{}",
        r.text()
    );
    let tail = String::from_utf8(unb64(r.header("x-amz-log-result").unwrap())).unwrap();
    assert!(tail.contains("dying"), "{tail}");
    wait_no_sandbox_processes(&h);
    // The next invoke starts a fresh instance (which crashes again).
    let again = h.invoke("crash", "{}");
    assert_eq!(again.header("x-hearth-cold-start"), Some("true"));
}

#[test]
fn function_names_qualifiers_and_arns() {
    let h = Hearth::start();
    h.deploy("named", "provided", "", &example("echo-sh"), &["--publish"]);
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:named";
    let cases = [
        ("named", "$LATEST"),
        ("named:1", "1"),
        ("named:$LATEST", "$LATEST"),
        (arn, "$LATEST"),
        (
            "arn:aws:lambda:us-east-1:000000000000:function:named:1",
            "1",
        ),
        ("000000000000:function:named", "$LATEST"),
    ];
    for (name, version) in cases {
        let encoded = name.replace(':', "%3A").replace('$', "%24");
        let r = h.invoke(&encoded, r#"{"x":1}"#);
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(r.header("x-amz-executed-version"), Some(version), "{name}");
    }
    let q = h.request(
        "POST",
        "/2015-03-31/functions/named/invocations?Qualifier=1",
        &[],
        b"{}",
    );
    assert_eq!(q.header("x-amz-executed-version"), Some("1"));
    let conflict = h.request(
        "POST",
        "/2015-03-31/functions/named:1/invocations?Qualifier=2",
        &[],
        b"{}",
    );
    assert_eq!(conflict.status, 400);
    let missing_version = h.invoke("named:7", "{}");
    assert_eq!(
        (missing_version.status, missing_version.error_type()),
        (404, "ResourceNotFoundException")
    );
}

#[test]
fn dry_run_and_client_context() {
    let h = Hearth::start();
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    let dry = h.invoke_with("echo", &[("X-Amz-Invocation-Type", "DryRun")], "{}");
    assert_eq!(dry.status, 204);
    assert!(dry.body.is_empty());
    let missing = h.invoke_with("nope", &[("X-Amz-Invocation-Type", "DryRun")], "{}");
    assert_eq!(missing.status, 404);
    let cc = b64(br#"{"custom":{"k":"v"}}"#);
    let r = h.invoke_with(
        "echo",
        &[("X-Amz-Client-Context", cc.as_str())],
        r#"{"ok":1}"#,
    );
    assert_eq!(r.status, 200);
    let event = h.invoke_with("echo", &[("X-Amz-Invocation-Type", "Event")], "{}");
    assert_eq!(event.status, 202);
}

#[test]
fn bad_invoke_requests_get_lambda_errors_and_harm_nothing() {
    let h = Hearth::start();
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    let check = |r: common::Resp, status: u16, kind: &str| {
        assert_eq!((r.status, r.error_type()), (status, kind), "{}", r.text());
        assert!(r.json().get("message").is_some() || r.json().get("Message").is_some());
    };
    check(h.invoke("missing", "{}"), 404, "ResourceNotFoundException");
    check(
        h.invoke("echo", "{not json"),
        400,
        "InvalidRequestContentException",
    );
    check(
        h.invoke("echo", "hello"),
        400,
        "InvalidRequestContentException",
    );
    let big = format!("\"{}\"", "x".repeat(6 * 1024 * 1024 + 10));
    check(h.invoke("echo", &big), 413, "RequestTooLargeException");
    check(
        h.invoke("bad%2Fname", "{}"),
        400,
        "InvalidParameterValueException",
    );
    check(
        h.invoke(&"x".repeat(200), "{}"),
        400,
        "InvalidParameterValueException",
    );
    check(
        h.invoke_with("echo", &[("X-Amz-Invocation-Type", "Later")], "{}"),
        400,
        "InvalidParameterValueException",
    );
    check(
        h.invoke_with("echo", &[("X-Amz-Client-Context", "***")], "{}"),
        400,
        "InvalidRequestContentException",
    );
    check(
        h.request("GET", "/nowhere", &[], b""),
        404,
        "UnknownOperationException",
    );
    check(
        h.request("GET", "/2015-03-31/functions/echo/invocations", &[], b""),
        404,
        "UnknownOperationException",
    );
    // The server is unharmed.
    let ok = h.invoke("echo", r#"{"still":"fine"}"#);
    assert_eq!(ok.json()["still"], "fine");
}

#[test]
fn sigterm_drains_in_flight_invokes_and_exits_zero() {
    let mut h = Hearth::start();
    h.deploy(
        "slow",
        "python3.11",
        "hello.handler",
        &example("hello-py"),
        &["--timeout", "30"],
    );
    assert_eq!(h.invoke("slow", "{}").status, 200);
    let endpoint = h.endpoint.clone();
    let inflight = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut r = agent
            .post(format!("{endpoint}/2015-03-31/functions/slow/invocations"))
            .send(r#"{"sleep": 2}"#)
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    });
    std::thread::sleep(Duration::from_millis(700));
    let status = h.stop();
    let (code, body) = inflight.join().unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"count\": 2"), "{body}");
    assert!(status.success(), "exit {status}\n{}", h.log());
    wait_no_sandbox_processes(&h);
}

#[test]
fn functions_survive_a_restart() {
    let mut h = Hearth::start();
    h.deploy("keep", "provided", "", &example("echo-sh"), &["--publish"]);
    assert_eq!(h.invoke("keep", r#"{"n":1}"#).json()["n"], 1);
    h.restart();
    let r = h.invoke("keep:1", r#"{"n":2}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["n"], 2);
    assert_eq!(r.header("x-hearth-cold-start"), Some("true"));
    let out = h.cli(&["fn", "get", "keep"]);
    assert!(out.status.success());
}

#[test]
fn unrunnable_entrypoint_and_init_errors_are_function_errors() {
    let h = Hearth::start();
    let dir = h.dir.path().join("badinterp");
    write_bootstrap(&dir, "#!/no/such/interpreter\n");
    h.deploy("badinterp", "provided", "", &dir, &[]);
    let r = h.invoke("badinterp", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        r.json()["errorType"],
        "Runtime.InvalidEntrypoint",
        "{}",
        r.text()
    );

    h.deploy(
        "nomodule",
        "python3.11",
        "missing.handler",
        &example("hello-py"),
        &[],
    );
    let r = h.invoke("nomodule", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        r.json()["errorType"],
        "Runtime.ImportModuleError",
        "{}",
        r.text()
    );
    wait_no_sandbox_processes(&h);
    // The server stays healthy for working functions.
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    assert_eq!(h.invoke("echo", r#"{"ok":true}"#).json()["ok"], true);
}

#[test]
fn function_logs_through_the_public_api_and_the_cli() {
    let h = Hearth::start_with("[agent]\nlog_max_bytes = 4096\n");
    h.deploy(
        "chatty",
        "python3.11",
        "hello.handler",
        &example("hello-py"),
        &[],
    );
    let first = h.invoke("chatty", "{}");
    let id = first.header("x-amzn-requestid").unwrap().to_string();
    let out = h.cli(&["fn", "logs", "chatty"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains(&format!("START RequestId: {id}")), "{text}");
    assert!(
        text.contains(&format!("hello-py got request {id}")),
        "{text}"
    );
    // Follow: only what comes after the cursor.
    let r = h.request("GET", "/2015-03-31/functions/chatty/invocations", &[], b"");
    assert_eq!(r.status, 404);
    let logs = h.request("GET", "/hearth/v1/functions/chatty/logs?tail=100", &[], b"");
    let cursor = logs.header("x-hearth-log-cursor").unwrap().to_string();
    let second = h.invoke("chatty", "{}");
    let id2 = second.header("x-amzn-requestid").unwrap();
    let since = h
        .request(
            "GET",
            &format!("/hearth/v1/functions/chatty/logs?cursor={cursor}"),
            &[],
            b"",
        )
        .text();
    assert!(since.contains(id2) && !since.contains(&id), "{since}");
    // Many invocations rotate the instance's file at the bound.
    for _ in 0..60 {
        h.invoke("chatty", "{}");
    }
    let dir = h.data_dir().join("logs/chatty");
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        assert!(
            f.metadata().unwrap().len() <= 4096 + 512,
            "{:?} too big",
            f.path()
        );
    }
    assert!(
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .any(|f| f.path().to_string_lossy().ends_with(".1"))
    );
    assert_eq!(
        h.request("GET", "/hearth/v1/functions/nope/logs", &[], b"")
            .status,
        404
    );
}
