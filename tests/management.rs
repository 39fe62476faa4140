//! The management API and the `hearth fn` client against a real server: shapes, versions,
//! and hostile input that must be refused without storing anything.

mod common;

use common::{Hearth, b64, example, zip_of};
use serde_json::json;

fn echo_zip() -> Vec<u8> {
    std::fs::read(example("echo-sh").join("bootstrap"))
        .map(|b| zip_of(&[("bootstrap", 0o755, &b)]))
        .unwrap()
}

fn create_body(name: &str, zip: &[u8]) -> serde_json::Value {
    json!({ "FunctionName": name, "Runtime": "provided", "Role": "arn:aws:iam::000000000000:role/r", "Code": { "ZipFile": b64(zip) } })
}

fn code_files(h: &Hearth) -> usize {
    std::fs::read_dir(h.data_dir().join("code"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn create_get_list_publish_delete() {
    let h = Hearth::start();
    let zip = echo_zip();
    let r = h.create(create_body("alpha", &zip));
    assert_eq!(r.status, 201, "{}", r.text());
    let c = r.json();
    assert_eq!(
        c["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:alpha"
    );
    assert_eq!(c["Version"], "$LATEST");
    assert_eq!(c["State"], "Pending", "create answers at once");
    assert_eq!(c["StateReasonCode"], "Creating");
    let settled = h.wait_settled("alpha");
    assert_eq!(settled["State"], "Active");
    assert_eq!(settled["LastUpdateStatus"], "Successful");
    assert_eq!(settled["RevisionId"], c["RevisionId"]);
    assert_eq!(
        (c["MemorySize"].as_u64(), c["Timeout"].as_u64()),
        (Some(128), Some(3))
    );
    use sha2::Digest;
    assert_eq!(c["CodeSha256"], b64(&sha2::Sha256::digest(&zip)));
    assert_eq!(c["CodeSize"], zip.len());
    let lm = c["LastModified"].as_str().unwrap();
    assert!(
        lm.len() == 28 && lm.ends_with("+0000") && lm.as_bytes()[10] == b'T',
        "{lm}"
    );

    let dup = h.create(create_body("alpha", &zip));
    assert_eq!(
        (dup.status, dup.error_type()),
        (409, "ResourceConflictException")
    );

    let got = h.request("GET", "/2015-03-31/functions/alpha", &[], b"");
    assert_eq!(got.json()["Configuration"]["FunctionName"], "alpha");
    let location = got.json()["Code"]["Location"].as_str().unwrap().to_string();
    let path = location
        .split_once("://")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1;
    assert_eq!(h.request("GET", &format!("/{path}"), &[], b"").body, zip);

    let v1 = h.request("POST", "/2015-03-31/functions/alpha/versions", &[], b"{}");
    assert_eq!(v1.status, 201);
    assert_eq!(v1.json()["Version"], "1");
    assert_eq!(
        v1.json()["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:alpha:1"
    );
    let same = h.request("POST", "/2015-03-31/functions/alpha/versions", &[], b"{}");
    assert_eq!(
        same.json()["Version"],
        "1",
        "nothing changed: no new version"
    );
    let upd = h.request(
        "PUT",
        "/2015-03-31/functions/alpha/configuration",
        &[],
        br#"{"Timeout": 9}"#,
    );
    assert_eq!(upd.json()["Timeout"], 9);
    assert_eq!(upd.json()["LastUpdateStatus"], "InProgress");
    let busy = h.request("POST", "/2015-03-31/functions/alpha/versions", &[], b"{}");
    let settled = h.wait_settled("alpha");
    if busy.status != 201 {
        assert_eq!(
            (busy.status, busy.error_type()),
            (409, "ResourceConflictException")
        );
    }
    assert_eq!(settled["LastUpdateStatus"], "Successful");
    let v2 = h.request("POST", "/2015-03-31/functions/alpha/versions", &[], b"{}");
    assert_eq!(v2.json()["Version"], "2");
    let cfg1 = h.request(
        "GET",
        "/2015-03-31/functions/alpha/configuration?Qualifier=1",
        &[],
        b"",
    );
    assert_eq!(cfg1.json()["Timeout"], 3);
    let versions = h
        .request("GET", "/2015-03-31/functions/alpha/versions", &[], b"")
        .json();
    assert_eq!(versions["Versions"].as_array().unwrap().len(), 3);

    assert_eq!(h.create(create_body("beta", &zip)).status, 201);
    let page = h
        .request("GET", "/2015-03-31/functions/?MaxItems=1", &[], b"")
        .json();
    assert_eq!(page["Functions"].as_array().unwrap().len(), 1);
    let marker = page["NextMarker"].as_str().unwrap();
    let rest = h
        .request(
            "GET",
            &format!("/2015-03-31/functions/?MaxItems=1&Marker={marker}"),
            &[],
            b"",
        )
        .json();
    assert_eq!(rest["Functions"][0]["FunctionName"], "beta");
    assert!(rest.get("NextMarker").is_none());

    let del_v = h.request(
        "DELETE",
        "/2015-03-31/functions/alpha?Qualifier=1",
        &[],
        b"",
    );
    assert_eq!(del_v.status, 204);
    assert_eq!(h.invoke("alpha:1", "{}").status, 404);
    let del = h.request("DELETE", "/2015-03-31/functions/alpha", &[], b"");
    assert_eq!(del.status, 204);
    let gone = h.request("GET", "/2015-03-31/functions/alpha", &[], b"");
    assert_eq!(
        (gone.status, gone.error_type()),
        (404, "ResourceNotFoundException")
    );
    assert_eq!(h.invoke("alpha", "{}").status, 404);
}

#[test]
fn update_code_with_publish_and_revision_ids() {
    let h = Hearth::start();
    let c = h.create(create_body("gamma", &echo_zip())).json();
    let other = zip_of(&[("bootstrap", 0o755, b"#!/bin/sh\nexit 0\n")]);
    let stale = json!({ "ZipFile": b64(&other), "RevisionId": "not-the-revision" });
    let r = h.request(
        "PUT",
        "/2015-03-31/functions/gamma/code",
        &[],
        stale.to_string().as_bytes(),
    );
    assert_eq!(
        (r.status, r.error_type()),
        (412, "PreconditionFailedException")
    );
    h.wait_settled("gamma");
    let body = json!({ "ZipFile": b64(&other), "Publish": true, "RevisionId": c["RevisionId"] });
    let r = h.request(
        "PUT",
        "/2015-03-31/functions/gamma/code",
        &[],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["Version"], "1");
    assert_ne!(r.json()["CodeSha256"], c["CodeSha256"]);
}

#[test]
fn invalid_create_requests_are_refused_and_store_nothing() {
    let h = Hearth::start_with(
        "[limits]\nmax_unpacked_bytes = 2000000\nmax_zip_bytes = 1000000\nmax_management_body_bytes = 2000000\nmax_zip_entries = 50\n",
    );
    let zip = echo_zip();
    let base = create_body("ok-name", &zip);
    let with = |patch: serde_json::Value| {
        let mut b = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let zipped = |z: Vec<u8>| with(json!({ "Code": { "ZipFile": b64(&z) } }));
    let bomb = zip_of(&[
        ("bootstrap", 0o755, b"#!/bin/sh\n"),
        ("big", 0o644, &vec![0u8; 3_000_000]),
    ]);
    let many: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("f{i}"), vec![])).collect();
    let many_refs: Vec<(&str, u32, &[u8])> = many
        .iter()
        .map(|(n, d)| (n.as_str(), 0o644, d.as_slice()))
        .collect();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "bad name",
            with(json!({"FunctionName": "no/slash"})),
            "functionName",
        ),
        (
            "long name",
            with(json!({"FunctionName": "x".repeat(65)})),
            "functionName",
        ),
        ("memory low", with(json!({"MemorySize": 64})), "memorySize"),
        (
            "memory high",
            with(json!({"MemorySize": 10241})),
            "memorySize",
        ),
        ("timeout low", with(json!({"Timeout": 0})), "timeout"),
        ("timeout high", with(json!({"Timeout": 901})), "timeout"),
        (
            "runtime",
            with(json!({"Runtime": "nodejs20.x"})),
            "python3.11",
        ),
        (
            "reserved env",
            with(json!({"Environment": {"Variables": {"AWS_REGION": "x"}}})),
            "AWS_REGION",
        ),
        ("image", with(json!({"PackageType": "Image"})), "Image"),
        ("arm64", with(json!({"Architectures": ["arm64"]})), "x86_64"),
        (
            "layers",
            with(json!({"Layers": ["arn:aws:lambda:us-east-1:000000000000:layer:l:1"]})),
            "Layers",
        ),
        (
            "s3",
            with(json!({"Code": {"S3Bucket": "b", "S3Key": "k"}})),
            "S3",
        ),
        (
            "bad base64",
            with(json!({"Code": {"ZipFile": "@@@"}})),
            "base64",
        ),
        ("not a zip", zipped(b"this is not a zip".to_vec()), "zip"),
        (
            "absolute path",
            zipped(zip_of(&[
                ("bootstrap", 0o755, b"x"),
                ("/etc/passwd", 0o644, b"x"),
            ])),
            "/etc/passwd",
        ),
        (
            "dot dot",
            zipped(zip_of(&[
                ("bootstrap", 0o755, b"x"),
                ("../evil", 0o644, b"x"),
            ])),
            "evil",
        ),
        (
            "symlink",
            zipped(zip_of(&[
                ("bootstrap", 0o755, b"x"),
                ("link", 0o120777, b"/etc/shadow"),
            ])),
            "link",
        ),
        (
            "duplicate",
            zipped(zip_of(&[
                ("bootstrap", 0o755, b"x"),
                ("a", 0o644, b"1"),
                ("./a", 0o644, b"2"),
            ])),
            "a",
        ),
        (
            "no bootstrap",
            zipped(zip_of(&[("main.py", 0o644, b"x")])),
            "bootstrap",
        ),
        ("too many entries", zipped(zip_of(&many_refs)), "entries"),
        ("unpacked too big", zipped(bomb), "byte"),
    ];
    for (what, body, needle) in cases {
        let r = h.create(body);
        assert_eq!(
            (r.status, r.error_type()),
            (400, "InvalidParameterValueException"),
            "{what}: {}",
            r.text()
        );
        assert!(
            r.text().contains(needle),
            "{what}: message should name {needle:?}: {}",
            r.text()
        );
    }
    let too_big = zipped(vec![7u8; 1_200_000]);
    assert_eq!(h.create(too_big).status, 413);
    let r = h.request("POST", "/2015-03-31/functions", &[], b"{not json");
    assert_eq!(
        (r.status, r.error_type()),
        (400, "InvalidRequestContentException")
    );
    assert_eq!(code_files(&h), 0, "refused packages must not be stored");
    let list = h.request("GET", "/2015-03-31/functions/", &[], b"").json();
    assert_eq!(list["Functions"].as_array().unwrap().len(), 0);
    assert_eq!(h.create(base).status, 201, "the server still works");
}

#[test]
fn client_commands() {
    let h = Hearth::start();
    let ok = |args: &[&str]| {
        let out = h.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let code = example("echo-sh");
    let created = ok(&[
        "fn",
        "create",
        "cli-echo",
        "--runtime",
        "provided",
        "--code",
        code.to_str().unwrap(),
        "--memory",
        "256",
        "--timeout",
        "5",
    ]);
    let v: serde_json::Value = serde_json::from_str(&created).unwrap();
    assert_eq!(
        (v["MemorySize"].as_u64(), v["Timeout"].as_u64()),
        (Some(256), Some(5))
    );
    assert!(ok(&["fn", "list"]).contains("cli-echo"));
    assert!(ok(&["fn", "get", "cli-echo"]).contains("\"Location\""));
    assert!(ok(&["fn", "publish", "cli-echo"]).contains("\"Version\": \"1\""));
    assert_eq!(
        ok(&["invoke", "cli-echo:1", "--payload", r#"{"hi":1}"#]).trim(),
        r#"{"hi":1}"#
    );
    let payload = h.dir.path().join("p.json");
    std::fs::write(&payload, r#"{"from":"file"}"#).unwrap();
    let out = h.cli(&[
        "invoke",
        "cli-echo",
        "--payload",
        &format!("@{}", payload.display()),
        "--log-tail",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("file"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("START RequestId"));
    ok(&[
        "fn",
        "update-code",
        "cli-echo",
        "--code",
        code.to_str().unwrap(),
        "--publish",
    ]);
    ok(&["fn", "delete", "cli-echo"]);
    let missing = h.cli(&["fn", "get", "cli-echo"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"));
    let unreachable = std::process::Command::new(common::BIN)
        .args(["fn", "list", "--endpoint", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach hearth"));
}
