//! Function URLs against a real server and a real python3.11 function
//! (`tests/functions/url-py`): the payload 2.0 event, response mapping (full object, plain-JSON
//! shortcut, binary round trip), errors (function error, bad headers, no URL config, AWS_IAM,
//! oversize bodies), qualifiers, CORS, and absolute `FunctionUrl`s.

mod common;

use common::{Hearth, Resp, repo};
use serde_json::{Value, json};

const F: &str = "/2015-03-31/functions";

fn call(h: &Hearth, method: &str, path: &str, body: Value) -> Resp {
    h.request(method, path, &[], body.to_string().as_bytes())
}

fn ok(r: Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    r.json()
}

/// Deploys url-py as `name` and gives it a URL config (`cors` may be null).
fn deploy(h: &Hearth, name: &str, cors: Value) -> Value {
    h.deploy(
        name,
        "python3.11",
        "app.handler",
        &repo().join("tests/functions/url-py"),
        &[],
    );
    h.wait_settled(name);
    let mut body = json!({ "AuthType": "NONE" });
    if !cors.is_null() {
        body["Cors"] = cors;
    }
    ok(
        call(
            h,
            "POST",
            &format!("/2021-10-31/functions/{name}/url"),
            body,
        ),
        201,
    )
}

/// Publishes version 1 and points alias `alias` at it, with a URL config of `auth`.
fn alias_url(h: &Hearth, name: &str, alias: &str, auth: &str) -> Value {
    let v = call(h, "POST", &format!("{F}/{name}/versions"), json!({}));
    assert!(v.status == 201, "{}", v.text());
    let a = json!({ "Name": alias, "FunctionVersion": "1" });
    ok(call(h, "POST", &format!("{F}/{name}/aliases"), a), 201);
    ok(
        call(
            h,
            "POST",
            &format!("/2021-10-31/functions/{name}/url?Qualifier={alias}"),
            json!({ "AuthType": auth }),
        ),
        201,
    )
}

#[test]
fn request_becomes_a_2_0_event_and_the_result_a_response() {
    let h = Hearth::start();
    deploy(&h, "web", Value::Null);
    let r = h.request(
        "POST",
        "/fn/web/echo/deep/path?a=1&a=2&b=x%20y",
        &[
            ("x-multi", "one"),
            ("x-multi", "two"),
            ("Cookie", "c1=v1; c2=v2"),
            ("content-type", "application/json"),
            ("user-agent", "url-test/1"),
        ],
        br#"{"hello":"world"}"#,
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-amzn-requestid").is_some());
    let out = r.json();
    let e = &out["event"];
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], "$default");
    assert_eq!(e["rawPath"], "/echo/deep/path");
    assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y");
    assert_eq!(
        e["queryStringParameters"],
        json!({ "a": "1,2", "b": "x y" })
    );
    assert_eq!(e["headers"]["x-multi"], "one,two");
    assert_eq!(e["headers"]["user-agent"], "url-test/1");
    assert_eq!(e["cookies"], json!(["c1=v1", "c2=v2"]));
    assert_eq!(e["body"], r#"{"hello":"world"}"#);
    assert_eq!(e["isBase64Encoded"], false);
    let rc = &e["requestContext"];
    assert_eq!(rc["http"]["method"], "POST");
    assert_eq!(rc["http"]["path"], "/echo/deep/path");
    assert_eq!(rc["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(rc["http"]["userAgent"], "url-test/1");
    assert_eq!(rc["stage"], "$default");
    assert_eq!(rc["accountId"], "000000000000");
    assert_eq!(rc["requestId"].as_str(), r.header("x-amzn-requestid"));
    assert!(rc["timeEpoch"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(out["version"], "$LATEST");

    // No rest after the function: rawPath "/" (the function's own 404 for it).
    for path in ["/fn/web", "/fn/web/"] {
        let r = h.request("GET", path, &[], b"");
        assert_eq!((r.status, r.text().as_str()), (404, "no route /"), "{path}");
    }

    // A full response object.
    let r = h.request("GET", "/fn/web/full", &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.text(), "created");
    assert_eq!(r.header("x-custom"), Some("yes"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; HttpOnly"]);

    // Binary bodies round-trip.
    let bytes: Vec<u8> = (0..200_000).map(|_| fastrand::u8(..)).collect();
    let r = h.request(
        "POST",
        "/fn/web/binary",
        &[("content-type", "application/octet-stream")],
        &bytes,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.body == bytes, "binary body changed on the round trip");

    // A function error and an invalid header are 502, the server stays up.
    let r = h.request("GET", "/fn/web/fail", &[], b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (502, "Internal Server Error")
    );
    let r = h.request("GET", "/fn/web/badheader", &[], b"");
    assert_eq!(r.status, 502, "{}", r.text());

    // Bodies past the sync payload limit: 413, raw or once base64 grows it.
    let big = vec![b'x'; 6 * 1024 * 1024 + 1];
    let r = h.request(
        "POST",
        "/fn/web/echo",
        &[("content-type", "text/plain")],
        &big,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    let grows = vec![7u8; 5 * 1024 * 1024];
    let r = h.request("POST", "/fn/web/echo", &[], &grows);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(h.request("GET", "/fn/web/full", &[], b"").status, 201);
}

#[test]
fn qualifiers_missing_configs_and_auth() {
    let h = Hearth::start();
    deploy(&h, "q", Value::Null);
    alias_url(&h, "q", "live", "NONE");
    let r = h.request("GET", "/fn/q:live/echo/x", &[], b"");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
    let out = r.json();
    assert_eq!(out["event"]["rawPath"], "/echo/x");
    assert_eq!(out["version"], "1");
    assert!(out["arn"].as_str().unwrap().ends_with(":function:q:live"));
    let r = h.request("GET", "/fn/q%3Alive/echo", &[], b"");
    assert_eq!(r.status, 200, "percent-encoded ':' {}", r.text());

    // No URL config: the function exists but has none, an alias without one, no function.
    h.deploy(
        "bare",
        "python3.11",
        "app.handler",
        &repo().join("tests/functions/url-py"),
        &[],
    );
    for path in [
        "/fn/bare/echo",
        "/fn/q:other/echo",
        "/fn/q:1/echo",
        "/fn/nope/",
        "/fn/bad%20name/",
    ] {
        let r = h.request("GET", path, &[], b"");
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(r.json(), json!({ "Message": null }), "{path}");
    }

    // AWS_IAM is refused: hearth does not verify SigV4.
    let v = call(
        &h,
        "POST",
        &format!("{F}/q/aliases"),
        json!({ "Name": "iam", "FunctionVersion": "1" }),
    );
    assert_eq!(v.status, 201, "{}", v.text());
    ok(
        call(
            &h,
            "POST",
            "/2021-10-31/functions/q/url?Qualifier=iam",
            json!({ "AuthType": "AWS_IAM" }),
        ),
        201,
    );
    let r = h.request("GET", "/fn/q:iam/echo", &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("SigV4"), "{}", r.text());

    // Deleting the URL config takes the URL away.
    let d = h.request(
        "DELETE",
        "/2021-10-31/functions/q/url?Qualifier=live",
        &[],
        b"",
    );
    assert_eq!(d.status, 204, "{}", d.text());
    assert_eq!(h.request("GET", "/fn/q:live/echo", &[], b"").status, 404);
}

#[test]
fn cors_preflight_and_actual_requests() {
    let h = Hearth::start();
    let cors = json!({
        "AllowOrigins": ["https://app.example"],
        "AllowMethods": ["GET", "POST"],
        "AllowHeaders": ["x-custom"],
        "ExposeHeaders": ["x-custom"],
        "MaxAge": 600,
        "AllowCredentials": true,
    });
    deploy(&h, "c", cors);
    let pre = |origin: &str| {
        h.request(
            "OPTIONS",
            "/fn/c/full",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x-custom"),
            ],
            b"",
        )
    };
    let r = pre("https://app.example");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-custom"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert!(
        r.body.is_empty() && r.header("x-custom").is_none(),
        "not invoked"
    );
    let r = pre("https://evil.example");
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-origin").is_none());

    let r = h.request(
        "GET",
        "/fn/c/full",
        &[("origin", "https://app.example")],
        b"",
    );
    assert_eq!(r.status, 201, "{}\n{}", r.text(), h.log());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-expose-headers"), Some("x-custom"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let r = h.request(
        "GET",
        "/fn/c/full",
        &[("origin", "https://evil.example")],
        b"",
    );
    assert_eq!(r.status, 201);
    assert!(r.header("access-control-allow-origin").is_none());

    // "*" without credentials answers "*".
    let any = json!({ "Cors": { "AllowOrigins": ["*"] } });
    ok(call(&h, "PUT", "/2021-10-31/functions/c/url", any), 200);
    let r = h.request("GET", "/fn/c/full", &[("origin", "https://x.example")], b"");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("*"),
        "{}",
        r.text()
    );
}

#[test]
fn function_url_is_absolute() {
    // Without public_url: the bound address, whatever Host the client sent.
    let h = Hearth::start();
    let c = deploy(&h, "abs", Value::Null);
    assert_eq!(c["FunctionUrl"], format!("{}/fn/abs/", h.endpoint));
    let got = h.request(
        "GET",
        "/2021-10-31/functions/abs/url",
        &[("host", "evil.example")],
        b"",
    );
    assert_eq!(got.json()["FunctionUrl"], format!("{}/fn/abs/", h.endpoint));
    let q = alias_url(&h, "abs", "live", "NONE");
    assert_eq!(q["FunctionUrl"], format!("{}/fn/abs:live/", h.endpoint));
    // The URL it names is served.
    let url = q["FunctionUrl"].as_str().unwrap();
    let path = url.strip_prefix(&h.endpoint).unwrap();
    assert_eq!(
        h.request("GET", &format!("{path}full"), &[], b"").status,
        201
    );
    drop(h);

    // With public_url: that base, for Create, Get and List.
    let h = Hearth::start_with("public_url = \"http://fn.example.com:8080\"\n");
    let c = deploy(&h, "abs", Value::Null);
    assert_eq!(c["FunctionUrl"], "http://fn.example.com:8080/fn/abs/");
    let q = alias_url(&h, "abs", "live", "NONE");
    assert_eq!(q["FunctionUrl"], "http://fn.example.com:8080/fn/abs:live/");
    let got = ok(
        call(&h, "GET", "/2021-10-31/functions/abs/url", Value::Null),
        200,
    );
    assert_eq!(got["FunctionUrl"], "http://fn.example.com:8080/fn/abs/");
    let list = ok(
        call(&h, "GET", "/2021-10-31/functions/abs/urls", Value::Null),
        200,
    );
    let urls: Vec<_> = list["FunctionUrlConfigs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["FunctionUrl"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        urls,
        [
            "http://fn.example.com:8080/fn/abs/",
            "http://fn.example.com:8080/fn/abs:live/"
        ]
    );
}
