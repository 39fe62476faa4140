//! A function's resources against a real server: aliases (and invoking through them),
//! reserved concurrency, function URLs, event invoke configs, permissions, tags; the CLI; and
//! hostile bodies that must be refused without storing anything.

mod common;

use common::{Hearth, Resp, b64, example, zip_of};
use serde_json::{Value, json};

const F: &str = "/2015-03-31/functions";

fn echo_zip() -> Vec<u8> {
    let b = std::fs::read(example("echo-sh").join("bootstrap")).unwrap();
    zip_of(&[("bootstrap", 0o755, &b)])
}

fn call(h: &Hearth, method: &str, path: &str, body: Value) -> Resp {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    h.request(method, path, &[], body.as_bytes())
}

fn ok(r: Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

fn err(r: &Resp, status: u16, kind: &str) {
    assert_eq!((r.status, r.error_type()), (status, kind), "{}", r.text());
}

/// An echo-sh function with versions 1 and 2 (different environments).
fn two_versions(h: &Hearth, name: &str, extra: Value) {
    let mut body = json!({ "FunctionName": name, "Runtime": "provided", "Code": { "ZipFile": b64(&echo_zip()) },
                           "Environment": { "Variables": { "V": "1" } } });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    ok(h.create(body), 201);
    h.wait_settled(name);
    assert_eq!(
        ok(
            call(h, "POST", &format!("{F}/{name}/versions"), json!({})),
            201
        )["Version"],
        "1"
    );
    let cfg = json!({ "Environment": { "Variables": { "V": "2" } } });
    ok(
        call(h, "PUT", &format!("{F}/{name}/configuration"), cfg),
        200,
    );
    h.wait_settled(name);
    assert_eq!(
        ok(
            call(h, "POST", &format!("{F}/{name}/versions"), json!({})),
            201
        )["Version"],
        "2"
    );
}

#[test]
fn aliases_and_invoking_through_them() {
    let mut h = Hearth::start();
    two_versions(&h, "al", json!({}));
    let aliases = format!("{F}/al/aliases");
    let created = ok(
        call(
            &h,
            "POST",
            &aliases,
            json!({ "Name": "live", "FunctionVersion": "1", "Description": "d", "Extra": 1 }),
        ),
        201,
    );
    assert_eq!(
        created["AliasArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:al:live"
    );
    assert_eq!(
        (
            created["Name"].as_str(),
            created["FunctionVersion"].as_str()
        ),
        (Some("live"), Some("1"))
    );
    assert_eq!(created["Description"], "d");
    let rev = created["RevisionId"].as_str().unwrap().to_string();
    assert_eq!(
        ok(
            call(&h, "GET", &format!("{aliases}/live"), Value::Null),
            200
        ),
        created
    );
    err(
        &call(
            &h,
            "POST",
            &aliases,
            json!({ "Name": "live", "FunctionVersion": "1" }),
        ),
        409,
        "ResourceConflictException",
    );
    err(
        &call(
            &h,
            "POST",
            &aliases,
            json!({ "Name": "nope", "FunctionVersion": "9" }),
        ),
        404,
        "ResourceNotFoundException",
    );
    err(
        &call(
            &h,
            "POST",
            &aliases,
            json!({ "Name": "5", "FunctionVersion": "1" }),
        ),
        400,
        "InvalidParameterValueException",
    );
    err(
        &call(
            &h,
            "POST",
            &format!("{F}/missing/aliases"),
            json!({ "Name": "a", "FunctionVersion": "1" }),
        ),
        404,
        "ResourceNotFoundException",
    );
    ok(
        call(
            &h,
            "POST",
            &aliases,
            json!({ "Name": "edge", "FunctionVersion": "$LATEST" }),
        ),
        201,
    );
    err(
        &call(
            &h,
            "PUT",
            &format!("{aliases}/edge"),
            json!({ "RoutingConfig": { "AdditionalVersionWeights": { "1": 0.5 } } }),
        ),
        400,
        "InvalidParameterValueException",
    );

    // Invoking through an alias runs its version and reports it.
    let r = h.invoke("al:live", r#"{"a":1}"#);
    assert_eq!(
        (r.status, r.header("x-amz-executed-version")),
        (200, Some("1")),
        "{}",
        r.text()
    );
    assert_eq!(r.json(), json!({"a": 1}));
    let r = h.request(
        "POST",
        &format!("{F}/al/invocations?Qualifier=edge"),
        &[],
        b"{}",
    );
    assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
    err(
        &h.invoke("al:ghost", "{}"),
        404,
        "ResourceNotFoundException",
    );

    // A 50/50 alias: both versions run, in proportion.
    let stale = json!({ "RoutingConfig": { "AdditionalVersionWeights": { "2": 0.5 } }, "RevisionId": "stale" });
    err(
        &call(&h, "PUT", &format!("{aliases}/live"), stale),
        412,
        "PreconditionFailedException",
    );
    let upd =
        json!({ "RoutingConfig": { "AdditionalVersionWeights": { "2": 0.5 } }, "RevisionId": rev });
    let updated = ok(call(&h, "PUT", &format!("{aliases}/live"), upd), 200);
    assert_eq!(
        updated["RoutingConfig"]["AdditionalVersionWeights"]["2"],
        0.5
    );
    assert_eq!(
        updated["Description"], "d",
        "an update keeps what it does not name"
    );
    assert_ne!(updated["RevisionId"].as_str(), Some(rev.as_str()));
    let n = 200;
    let twos = (0..n)
        .filter(|_| {
            let r = h.invoke("al:live", "{}");
            assert_eq!(r.status, 200, "{}", r.text());
            match r.header("x-amz-executed-version") {
                Some("2") => true,
                Some("1") => false,
                other => panic!("executed version {other:?}"),
            }
        })
        .count();
    assert!(
        (60..=140).contains(&twos),
        "version 2 ran {twos} of {n} times at weight 0.5"
    );

    // Versions an alias routes to cannot be deleted; the function can.
    err(
        &call(&h, "DELETE", &format!("{F}/al?Qualifier=1"), Value::Null),
        409,
        "ResourceConflictException",
    );
    let r = call(&h, "DELETE", &format!("{F}/al?Qualifier=2"), Value::Null);
    err(&r, 409, "ResourceConflictException");
    assert!(r.text().contains("live"), "{}", r.text());
    let listed = ok(call(&h, "GET", &aliases, Value::Null), 200);
    assert_eq!(listed["Aliases"].as_array().unwrap().len(), 2);
    let page = ok(
        call(&h, "GET", &format!("{aliases}?MaxItems=1"), Value::Null),
        200,
    );
    assert_eq!(
        (
            page["Aliases"][0]["Name"].as_str(),
            page["NextMarker"].as_str()
        ),
        (Some("edge"), Some("edge"))
    );
    let filtered = ok(
        call(
            &h,
            "GET",
            &format!("{aliases}?FunctionVersion=1"),
            Value::Null,
        ),
        200,
    );
    assert_eq!(filtered["Aliases"][0]["Name"], "live");
    assert_eq!(filtered["Aliases"].as_array().unwrap().len(), 1);

    // Aliases survive a restart.
    h.restart();
    assert_eq!(
        ok(
            call(&h, "GET", &format!("{aliases}/live"), Value::Null),
            200
        )["RevisionId"],
        updated["RevisionId"]
    );
    let cleared = ok(
        call(
            &h,
            "PUT",
            &format!("{aliases}/live"),
            json!({ "RoutingConfig": { "AdditionalVersionWeights": {} } }),
        ),
        200,
    );
    assert!(cleared.get("RoutingConfig").is_none(), "{cleared}");
    ok(
        call(&h, "DELETE", &format!("{F}/al?Qualifier=2"), Value::Null),
        204,
    );
    ok(
        call(&h, "DELETE", &format!("{aliases}/edge"), Value::Null),
        204,
    );
    err(
        &call(&h, "DELETE", &format!("{aliases}/edge"), Value::Null),
        404,
        "ResourceNotFoundException",
    );
    err(&h.invoke("al:edge", "{}"), 404, "ResourceNotFoundException");
    ok(call(&h, "DELETE", &format!("{F}/al"), Value::Null), 204);
    two_versions(&h, "al", json!({}));
    assert_eq!(
        ok(call(&h, "GET", &aliases, Value::Null), 200)["Aliases"],
        json!([]),
        "deleted with the function"
    );
}

#[test]
fn concurrency_urls_and_event_invoke_configs() {
    let h = Hearth::start();
    two_versions(&h, "res", json!({}));
    // Reserved concurrency.
    let put = "/2017-10-31/functions/res/concurrency";
    let get = "/2019-09-30/functions/res/concurrency";
    assert_eq!(ok(call(&h, "GET", get, Value::Null), 200), json!({}));
    assert_eq!(
        ok(
            call(&h, "PUT", put, json!({ "ReservedConcurrentExecutions": 7 })),
            200
        ),
        json!({ "ReservedConcurrentExecutions": 7 })
    );
    assert_eq!(
        ok(call(&h, "GET", get, Value::Null), 200)["ReservedConcurrentExecutions"],
        7
    );
    assert_eq!(
        ok(call(&h, "GET", &format!("{F}/res"), Value::Null), 200)["Concurrency"]["ReservedConcurrentExecutions"],
        7
    );
    ok(call(&h, "DELETE", put, Value::Null), 204);
    assert!(
        ok(call(&h, "GET", &format!("{F}/res"), Value::Null), 200)
            .get("Concurrency")
            .is_none()
    );
    err(
        &call(
            &h,
            "PUT",
            "/2017-10-31/functions/nope/concurrency",
            json!({ "ReservedConcurrentExecutions": 1 }),
        ),
        404,
        "ResourceNotFoundException",
    );

    // Function URLs.
    let url = "/2021-10-31/functions/res/url";
    err(
        &call(&h, "GET", url, Value::Null),
        404,
        "ResourceNotFoundException",
    );
    let c = ok(
        call(
            &h,
            "POST",
            url,
            json!({ "AuthType": "NONE", "Cors": { "AllowOrigins": ["*"] } }),
        ),
        201,
    );
    let host = h.endpoint.clone();
    assert_eq!(c["FunctionUrl"], format!("{host}/fn/res/"));
    assert_eq!(
        (c["AuthType"].as_str(), c["InvokeMode"].as_str()),
        (Some("NONE"), Some("BUFFERED"))
    );
    assert!(c["CreationTime"].as_str().unwrap().ends_with('Z'));
    err(
        &call(&h, "POST", url, json!({ "AuthType": "NONE" })),
        409,
        "ResourceConflictException",
    );
    let u = ok(
        call(&h, "PUT", url, json!({ "InvokeMode": "RESPONSE_STREAM" })),
        200,
    );
    assert_eq!(
        (u["AuthType"].as_str(), u["InvokeMode"].as_str()),
        (Some("NONE"), Some("RESPONSE_STREAM"))
    );
    assert_eq!(u["Cors"]["AllowOrigins"], json!(["*"]));
    let got = ok(call(&h, "GET", url, Value::Null), 200);
    assert!(got["LastModifiedTime"].is_string());
    err(
        &call(
            &h,
            "POST",
            &format!("{url}?Qualifier=live"),
            json!({ "AuthType": "NONE" }),
        ),
        404,
        "ResourceNotFoundException",
    );
    err(
        &call(
            &h,
            "POST",
            &format!("{url}?Qualifier=1"),
            json!({ "AuthType": "NONE" }),
        ),
        400,
        "InvalidParameterValueException",
    );
    ok(
        call(
            &h,
            "POST",
            &format!("{F}/res/aliases"),
            json!({ "Name": "live", "FunctionVersion": "2" }),
        ),
        201,
    );
    let q = ok(
        call(
            &h,
            "POST",
            &format!("{url}?Qualifier=live"),
            json!({ "AuthType": "AWS_IAM" }),
        ),
        201,
    );
    assert_eq!(q["FunctionUrl"], format!("{host}/fn/res:live/"));
    assert_eq!(
        q["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:res:live"
    );
    let list = ok(
        call(&h, "GET", "/2021-10-31/functions/res/urls", Value::Null),
        200,
    );
    assert_eq!(list["FunctionUrlConfigs"].as_array().unwrap().len(), 2);
    ok(call(&h, "DELETE", url, Value::Null), 204);
    err(
        &call(&h, "DELETE", url, Value::Null),
        404,
        "ResourceNotFoundException",
    );
    ok(
        call(&h, "DELETE", &format!("{F}/res/aliases/live"), Value::Null),
        204,
    );
    err(
        &call(&h, "GET", &format!("{url}?Qualifier=live"), Value::Null),
        404,
        "ResourceNotFoundException",
    );

    // Event invoke configs: Put replaces, Update (POST) merges, LastModified is a number.
    let eic = "/2019-09-25/functions/res/event-invoke-config";
    err(
        &call(&h, "GET", eic, Value::Null),
        404,
        "ResourceNotFoundException",
    );
    let dest = "arn:aws:sqs:us-east-1:000000000000:failed";
    let p = ok(
        call(
            &h,
            "PUT",
            eic,
            json!({ "MaximumRetryAttempts": 1, "DestinationConfig": { "OnFailure": { "Destination": dest } } }),
        ),
        200,
    );
    assert!(p["LastModified"].is_u64(), "{p}");
    assert_eq!(
        p["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:res:$LATEST"
    );
    assert_eq!(p["DestinationConfig"]["OnFailure"]["Destination"], dest);
    let u = ok(
        call(&h, "POST", eic, json!({ "MaximumEventAgeInSeconds": 120 })),
        200,
    );
    assert_eq!(
        (
            u["MaximumRetryAttempts"].as_u64(),
            u["MaximumEventAgeInSeconds"].as_u64()
        ),
        (Some(1), Some(120))
    );
    assert_eq!(u["DestinationConfig"]["OnFailure"]["Destination"], dest);
    let r = ok(
        call(&h, "PUT", eic, json!({ "MaximumEventAgeInSeconds": 60 })),
        200,
    );
    assert!(r.get("MaximumRetryAttempts").is_none(), "Put replaces: {r}");
    assert_eq!(ok(call(&h, "GET", eic, Value::Null), 200), r);
    ok(
        call(
            &h,
            "PUT",
            &format!("{eic}?Qualifier=1"),
            json!({ "MaximumRetryAttempts": 0 }),
        ),
        200,
    );
    err(
        &call(&h, "PUT", &format!("{eic}?Qualifier=9"), json!({})),
        404,
        "ResourceNotFoundException",
    );
    let list = ok(call(&h, "GET", &format!("{eic}/list"), Value::Null), 200);
    assert_eq!(
        list["FunctionEventInvokeConfigs"].as_array().unwrap().len(),
        2
    );
    ok(
        call(&h, "DELETE", &format!("{F}/res?Qualifier=1"), Value::Null),
        204,
    );
    err(
        &call(&h, "GET", &format!("{eic}?Qualifier=1"), Value::Null),
        404,
        "ResourceNotFoundException",
    );
    ok(call(&h, "DELETE", eic, Value::Null), 204);
    err(
        &call(&h, "DELETE", eic, Value::Null),
        404,
        "ResourceNotFoundException",
    );
}

#[test]
fn permissions_and_tags() {
    let h = Hearth::start();
    two_versions(
        &h,
        "pt",
        json!({ "Tags": { "team": "core", "env": "test" } }),
    );
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:pt";
    // Tags: from CreateFunction, then TagResource/UntagResource/ListTags.
    assert_eq!(
        ok(call(&h, "GET", &format!("{F}/pt"), Value::Null), 200)["Tags"],
        json!({ "team": "core", "env": "test" })
    );
    let tags = format!("/2017-03-31/tags/{}", arn.replace(':', "%3A"));
    ok(
        call(
            &h,
            "POST",
            &tags,
            json!({ "Tags": { "owner": "ann", "env": "prod" } }),
        ),
        204,
    );
    assert_eq!(
        ok(call(&h, "GET", &tags, Value::Null), 200)["Tags"],
        json!({ "team": "core", "env": "prod", "owner": "ann" })
    );
    ok(
        call(
            &h,
            "DELETE",
            &format!("{tags}?tagKeys=team&tagKeys=env"),
            Value::Null,
        ),
        204,
    );
    assert_eq!(
        ok(call(&h, "GET", &tags, Value::Null), 200)["Tags"],
        json!({ "owner": "ann" })
    );
    err(
        &call(&h, "POST", &tags, json!({ "Tags": { "aws:x": "1" } })),
        400,
        "InvalidParameterValueException",
    );
    err(
        &call(&h, "GET", &format!("{tags}%3A1"), Value::Null),
        400,
        "InvalidParameterValueException",
    );
    err(
        &call(
            &h,
            "GET",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Anope",
            Value::Null,
        ),
        404,
        "ResourceNotFoundException",
    );
    err(&h.create(json!({ "FunctionName": "bad-tags", "Runtime": "provided", "Code": { "ZipFile": b64(&echo_zip()) }, "Tags": { "aws:x": "1" } })),
        400, "InvalidParameterValueException");
    err(
        &call(&h, "GET", &format!("{F}/bad-tags"), Value::Null),
        404,
        "ResourceNotFoundException",
    );

    // Permissions.
    let policy = format!("{F}/pt/policy");
    err(
        &call(&h, "GET", &policy, Value::Null),
        404,
        "ResourceNotFoundException",
    );
    let add = json!({ "StatementId": "s3", "Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com",
                      "SourceArn": "arn:aws:s3:::bucket" });
    let added = ok(call(&h, "POST", &policy, add.clone()), 201);
    let stmt: Value = serde_json::from_str(added["Statement"].as_str().unwrap()).unwrap();
    assert_eq!(stmt["Sid"], "s3");
    assert_eq!(stmt["Resource"], arn);
    assert_eq!(
        stmt["Condition"]["ArnLike"]["AWS:SourceArn"],
        "arn:aws:s3:::bucket"
    );
    err(
        &call(&h, "POST", &policy, add),
        409,
        "ResourceConflictException",
    );
    let url = json!({ "StatementId": "url", "Action": "lambda:InvokeFunctionUrl", "Principal": "*", "FunctionUrlAuthType": "NONE" });
    ok(call(&h, "POST", &policy, url), 201);
    let got = ok(call(&h, "GET", &policy, Value::Null), 200);
    let doc: Value = serde_json::from_str(got["Policy"].as_str().unwrap()).unwrap();
    assert_eq!(doc["Version"], "2012-10-17");
    assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
    let rev = got["RevisionId"].as_str().unwrap();
    err(
        &call(
            &h,
            "DELETE",
            &format!("{policy}/s3?RevisionId=stale"),
            Value::Null,
        ),
        412,
        "PreconditionFailedException",
    );
    ok(
        call(
            &h,
            "DELETE",
            &format!("{policy}/s3?RevisionId={rev}"),
            Value::Null,
        ),
        204,
    );
    err(
        &call(&h, "DELETE", &format!("{policy}/s3"), Value::Null),
        404,
        "ResourceNotFoundException",
    );
    ok(
        call(
            &h,
            "POST",
            &format!("{policy}?Qualifier=1"),
            json!({ "StatementId": "v1", "Action": "lambda:*", "Principal": "123456789012" }),
        ),
        201,
    );
    let v1: Value = serde_json::from_str(
        ok(
            call(&h, "GET", &format!("{policy}?Qualifier=1"), Value::Null),
            200,
        )["Policy"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        v1["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::123456789012:root"
    );
    assert_eq!(v1["Statement"][0]["Resource"], format!("{arn}:1"));
    err(
        &call(
            &h,
            "POST",
            &format!("{policy}?Qualifier=7"),
            json!({ "StatementId": "x", "Action": "*", "Principal": "*" }),
        ),
        404,
        "ResourceNotFoundException",
    );

    // Deleting the function deletes its resources.
    ok(call(&h, "DELETE", &format!("{F}/pt"), Value::Null), 204);
    err(
        &call(&h, "GET", &tags, Value::Null),
        404,
        "ResourceNotFoundException",
    );
    two_versions(&h, "pt", json!({}));
    assert_eq!(
        ok(call(&h, "GET", &tags, Value::Null), 200)["Tags"],
        json!({})
    );
    err(
        &call(&h, "GET", &policy, Value::Null),
        404,
        "ResourceNotFoundException",
    );
}

#[test]
fn hostile_bodies_are_refused_and_store_nothing() {
    let h = Hearth::start();
    two_versions(&h, "hb", json!({}));
    let long_name = format!(r#"{{"Name":"{}","FunctionVersion":"1"}}"#, "a".repeat(129));
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        (
            "POST",
            "/2015-03-31/functions/hb/aliases",
            r#"{"Name":"a","FunctionVersion":1}"#,
            "FunctionVersion",
        ),
        (
            "POST",
            "/2015-03-31/functions/hb/aliases",
            r#"{"Name":"a","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"2":2}}}"#,
            "0.0 and 1.0",
        ),
        (
            "POST",
            "/2015-03-31/functions/hb/aliases",
            r#"{"Name":"a","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"2":0.1,"3":0.1}}}"#,
            "greater than 1",
        ),
        (
            "POST",
            "/2015-03-31/functions/hb/aliases",
            r#"{"Name":"a","FunctionVersion":"1","RoutingConfig":{"AdditionalVersionWeights":{"1":0.1}}}"#,
            "already included",
        ),
        (
            "POST",
            "/2015-03-31/functions/hb/aliases",
            r#"{"Name":"a","FunctionVersion":"1","RoutingConfig":"x"}"#,
            "RoutingConfig",
        ),
        (
            "POST",
            "/2015-03-31/functions/hb/aliases",
            r#"{"Name":"a","FunctionVersion":"1""#,
            "json",
        ),
        (
            "POST",
            "/2015-03-31/functions/hb/aliases",
            r#"["Name"]"#,
            "object",
        ),
        (
            "POST",
            "/2015-03-31/functions/hb/aliases",
            &long_name,
            "name",
        ),
        (
            "PUT",
            "/2017-10-31/functions/hb/concurrency",
            r#"{"ReservedConcurrentExecutions":-1}"#,
            "reservedConcurrentExecutions",
        ),
        (
            "PUT",
            "/2017-10-31/functions/hb/concurrency",
            r#"{"ReservedConcurrentExecutions":"10"}"#,
            "ReservedConcurrentExecutions",
        ),
        (
            "PUT",
            "/2017-10-31/functions/hb/concurrency",
            r#"{}"#,
            "reservedConcurrentExecutions",
        ),
        (
            "POST",
            "/2021-10-31/functions/hb/url",
            r#"{"AuthType":"OPEN"}"#,
            "authType",
        ),
        (
            "POST",
            "/2021-10-31/functions/hb/url",
            r#"{"AuthType":"NONE","Cors":{"MaxAge":-5}}"#,
            "maxAge",
        ),
        (
            "POST",
            "/2021-10-31/functions/hb/url",
            r#"{"AuthType":"NONE","Cors":{"AllowOrigins":"*"}}"#,
            "Cors.AllowOrigins",
        ),
        (
            "PUT",
            "/2019-09-25/functions/hb/event-invoke-config",
            r#"{"MaximumRetryAttempts":3}"#,
            "maximumRetryAttempts",
        ),
        (
            "PUT",
            "/2019-09-25/functions/hb/event-invoke-config",
            r#"{"MaximumEventAgeInSeconds":21601}"#,
            "maximumEventAgeInSeconds",
        ),
        (
            "PUT",
            "/2019-09-25/functions/hb/event-invoke-config",
            r#"{"MaximumEventAgeInSeconds":true}"#,
            "MaximumEventAgeInSeconds",
        ),
        (
            "PUT",
            "/2019-09-25/functions/hb/event-invoke-config",
            r#"{"DestinationConfig":{"OnFailure":{"Destination":"queue"}}}"#,
            "onFailure",
        ),
        (
            "POST",
            "/2015-03-31/functions/hb/policy",
            r#"{"StatementId":"a","Action":"iam:PassRole","Principal":"*"}"#,
            "action",
        ),
        (
            "POST",
            "/2015-03-31/functions/hb/policy",
            r#"{"StatementId":1,"Action":"*","Principal":"*"}"#,
            "StatementId",
        ),
        (
            "POST",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahb",
            r#"{"Tags":{"k":7}}"#,
            "Tags.k",
        ),
        (
            "POST",
            "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahb",
            r#"{"Tags":null}"#,
            "tags",
        ),
    ];
    for (method, path, body, needle) in cases {
        let r = h.request(method, path, &[], body.as_bytes());
        assert_eq!(r.status, 400, "{method} {path} {body}: {}", r.text());
        assert!(
            matches!(
                r.error_type(),
                "InvalidParameterValueException" | "InvalidRequestContentException"
            ),
            "{body}: {}",
            r.error_type()
        );
        assert!(
            r.text().contains(needle),
            "{body}: message should name {needle:?}: {}",
            r.text()
        );
    }
    // Nothing was stored.
    assert_eq!(
        ok(
            call(&h, "GET", "/2015-03-31/functions/hb/aliases", Value::Null),
            200
        )["Aliases"],
        json!([])
    );
    assert_eq!(
        ok(
            call(
                &h,
                "GET",
                "/2019-09-30/functions/hb/concurrency",
                Value::Null
            ),
            200
        ),
        json!({})
    );
    err(
        &call(&h, "GET", "/2021-10-31/functions/hb/url", Value::Null),
        404,
        "ResourceNotFoundException",
    );
    err(
        &call(
            &h,
            "GET",
            "/2019-09-25/functions/hb/event-invoke-config",
            Value::Null,
        ),
        404,
        "ResourceNotFoundException",
    );
    err(
        &call(&h, "GET", "/2015-03-31/functions/hb/policy", Value::Null),
        404,
        "ResourceNotFoundException",
    );
    // Unknown fields are ignored; unknown operations under the new prefixes are 404s.
    let extra = json!({ "Name": "a", "FunctionVersion": "1", "Surprise": { "deep": [1, 2] }, "Description": "ok" });
    ok(
        call(&h, "POST", "/2015-03-31/functions/hb/aliases", extra),
        201,
    );
    ok(
        call(
            &h,
            "PUT",
            "/2017-10-31/functions/hb/concurrency",
            json!({ "ReservedConcurrentExecutions": 0, "Other": "x" }),
        ),
        200,
    );
    err(
        &call(
            &h,
            "PUT",
            "/2019-09-30/functions/hb/provisioned-concurrency?Qualifier=1",
            json!({}),
        ),
        400,
        "InvalidParameterValueException",
    );
    err(
        &call(
            &h,
            "PATCH",
            "/2015-03-31/functions/hb/aliases/a",
            Value::Null,
        ),
        404,
        "UnknownOperationException",
    );
    err(
        &call(
            &h,
            "GET",
            "/2015-03-31/functions/hb/aliases/%FF",
            Value::Null,
        ),
        400,
        "InvalidParameterValueException",
    );
}

#[test]
fn client_commands() {
    let h = Hearth::start();
    two_versions(&h, "cli-res", json!({}));
    let run = |args: &[&str]| -> String {
        let out = h.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json_of = |args: &[&str]| -> Value { serde_json::from_str(&run(args)).unwrap() };
    let f = "cli-res";
    let a = json_of(&[
        "fn",
        "alias",
        "create",
        f,
        "live",
        "--version",
        "1",
        "--weight",
        "2=0.25",
    ]);
    assert_eq!(a["RoutingConfig"]["AdditionalVersionWeights"]["2"], 0.25);
    assert_eq!(
        json_of(&["fn", "alias", "get", f, "live"])["FunctionVersion"],
        "1"
    );
    let u = json_of(&[
        "fn",
        "alias",
        "update",
        f,
        "live",
        "--version",
        "2",
        "--weight",
        "none",
    ]);
    assert!(u.get("RoutingConfig").is_none());
    assert_eq!(
        json_of(&["fn", "alias", "list", f, "--version", "2"])["Aliases"][0]["Name"],
        "live"
    );
    assert_eq!(
        run(&["invoke", "cli-res:live", "--payload", r#"{"x":1}"#]).trim(),
        r#"{"x":1}"#
    );
    let out = h.cli(&[
        "fn",
        "alias",
        "update",
        f,
        "live",
        "--revision-id",
        "stale",
        "--description",
        "x",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("PreconditionFailedException"));
    assert_eq!(
        json_of(&["fn", "concurrency", "put", f, "3"])["ReservedConcurrentExecutions"],
        3
    );
    assert_eq!(
        json_of(&["fn", "concurrency", "get", f])["ReservedConcurrentExecutions"],
        3
    );
    run(&["fn", "concurrency", "delete", f]);
    assert_eq!(json_of(&["fn", "concurrency", "get", f]), json!({}));
    let url = json_of(&[
        "fn",
        "url",
        "create",
        f,
        "--qualifier",
        "live",
        "--cors-origin",
        "https://a.example",
    ]);
    assert_eq!(
        url["FunctionUrl"],
        format!("{}/fn/cli-res:live/", h.endpoint)
    );
    assert_eq!(
        json_of(&["fn", "url", "get", f, "--qualifier", "live"])["AuthType"],
        "NONE"
    );
    run(&["fn", "url", "delete", f, "--qualifier", "live"]);
    run(&["fn", "tag", f, "team=core", "tier=1"]);
    assert_eq!(
        json_of(&["fn", "tags", f])["Tags"],
        json!({ "team": "core", "tier": "1" })
    );
    run(&["fn", "untag", f, "tier"]);
    assert_eq!(
        json_of(&["fn", "tags", f])["Tags"],
        json!({ "team": "core" })
    );
    let added = json_of(&[
        "fn",
        "permission",
        "add",
        f,
        "s1",
        "--principal",
        "events.amazonaws.com",
    ]);
    assert!(
        added["Statement"]
            .as_str()
            .unwrap()
            .contains("events.amazonaws.com")
    );
    assert_eq!(
        json_of(&["fn", "permission", "policy", f])["Policy"]["Statement"][0]["Sid"],
        "s1"
    );
    run(&["fn", "permission", "remove", f, "s1"]);
    run(&["fn", "alias", "delete", f, "live"]);
    let missing = h.cli(&["fn", "alias", "get", f, "live"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"));
}
