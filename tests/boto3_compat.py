#!/usr/bin/env python3
"""boto3 compatibility test for hearth: drives a running `hearth serve` with boto3 exactly as a
user would, and checks each response against the shapes of the Lambda API.

Usage: boto3_compat.py [ENDPOINT [EXAMPLES_DIR]]
  ENDPOINT      the public API URL (default: env HEARTH_ENDPOINT)
  EXAMPLES_DIR  examples/functions (default: env HEARTH_EXAMPLES, else ../examples/functions)

Prints one line per check and a closing `N passed, M failed` line; exits 1 on any failure.
"""

import base64
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid
import zipfile

import boto3
import botocore
from botocore.config import Config

ACCOUNT = "000000000000"
REGION = "us-east-1"
LAST_MODIFIED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
REVISION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# A python function whose handler returns what awslambdaric gives it as the client context.
CLIENT_CONTEXT_PY = '''\
def handler(event, context):
    cc = context.client_context
    print("cc-py got request " + context.aws_request_id, flush=True)
    return {
        "custom": cc.custom if cc is not None else None,
        "env": cc.env if cc is not None else None,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
    }
'''


def arn(name, qualifier=None):
    a = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{a}:{qualifier}" if qualifier is not None else a


def zip_dir(path, extra=None):
    """Zips a directory's files (sorted, fixed timestamps) keeping the executable bit."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                full = os.path.join(root, f)
                rel = os.path.relpath(full, path)
                info = zipfile.ZipInfo(rel, date_time=(2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                mode = 0o755 if os.stat(full).st_mode & 0o111 else 0o644
                info.external_attr = (0o100000 | mode) << 16
                with open(full, "rb") as fh:
                    z.writestr(info, fh.read())
        for rel, data in sorted((extra or {}).items()):
            info = zipfile.ZipInfo(rel, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | 0o644) << 16
            z.writestr(info, data)
    return buf.getvalue()


def b64sha(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: expected {want!r}, got {got!r}")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def status(resp):
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def expect_error(exc_class, fn, *args, **kwargs):
    """Calls fn, which must raise exc_class (a modelled botocore exception); returns it."""
    try:
        fn(*args, **kwargs)
    except exc_class as e:
        err = e.response.get("Error", {})
        check(err.get("Message"), f"{exc_class.__name__} without a Message: {e.response!r}")
        return e
    except botocore.exceptions.ClientError as e:
        raise AssertionError(f"expected {exc_class.__name__}, got {e.response.get('Error')!r} "
                             f"(HTTP {e.response['ResponseMetadata'].get('HTTPStatusCode')})") from e
    raise AssertionError(f"expected {exc_class.__name__}, but the call succeeded")


class Compat:
    def __init__(self, endpoint, examples):
        self.endpoint = endpoint.rstrip("/")
        self.examples = examples
        self.client = boto3.client(
            "lambda",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=120, connect_timeout=10),
        )
        self.exc = self.client.exceptions
        suffix = uuid.uuid4().hex[:8]
        self.echo = f"boto-echo-{suffix}"
        self.hello = f"boto-hello-{suffix}"
        self.cc = f"boto-cc-{suffix}"
        self.gone = f"boto-gone-{suffix}"
        self.desc = f"boto-desc-{suffix}"
        self.missing = f"boto-missing-{suffix}"
        self.aliased = f"boto-alias-{suffix}"
        self.res = f"boto-res-{suffix}"
        self.echo_zip = zip_dir(os.path.join(examples, "echo-sh"))
        self.echo_zip2 = zip_dir(os.path.join(examples, "echo-sh"), {"VERSION": b"2\n"})
        self.echo_zip3 = zip_dir(os.path.join(examples, "echo-sh"), {"VERSION": b"3\n"})
        self.hello_zip = zip_dir(os.path.join(examples, "hello-py"))
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "cc.py"), "w") as f:
                f.write(CLIENT_CONTEXT_PY)
            self.cc_zip = zip_dir(d)
        self.created = {}

    # ---------------------------------------------------------------- helpers

    def check_config(self, c, name, version, zip_bytes, runtime, handler, state="Active", update="Successful"):
        eq(c["FunctionName"], name, "FunctionName")
        eq(c["FunctionArn"], arn(name, None if version == "$LATEST" else version), "FunctionArn")
        eq(c["Version"], version, "Version")
        eq(c["Runtime"], runtime, "Runtime")
        eq(c["Handler"], handler, "Handler")
        eq(c["CodeSha256"], b64sha(zip_bytes), "CodeSha256 (base64 sha256 of the zip)")
        eq(c["CodeSize"], len(zip_bytes), "CodeSize")
        eq(c["MemorySize"], 128, "MemorySize default")
        # This script creates its python functions with Timeout=10, the others with the default (3).
        eq(c["Timeout"], 10 if runtime == "python3.11" else 3, "Timeout")
        eq(c["State"], state, "State")
        eq(c["LastUpdateStatus"], update, "LastUpdateStatus")
        if state == "Pending":
            eq(c.get("StateReasonCode"), "Creating", "StateReasonCode while Pending")
        eq(c["PackageType"], "Zip", "PackageType")
        check(isinstance(c["LastModified"], str) and LAST_MODIFIED.match(c["LastModified"]),
              f"LastModified {c.get('LastModified')!r} is not YYYY-MM-DDTHH:MM:SS.mmm+0000")
        check(REVISION_ID.match(c.get("RevisionId", "")), f"RevisionId {c.get('RevisionId')!r}")
        check(c["Role"].startswith("arn:aws:iam::"), f"Role {c['Role']!r}")

    def create(self, name, zip_bytes, runtime, handler, publish=None, timeout=None):
        """CreateFunction, which answers Pending at once; then waits, as AWS users do, until Active."""
        kwargs = dict(FunctionName=name, Runtime=runtime, Handler=handler,
                      Role=f"arn:aws:iam::{ACCOUNT}:role/lambda-role", Code={"ZipFile": zip_bytes})
        if publish is not None:
            kwargs["Publish"] = publish
        if timeout is not None:
            kwargs["Timeout"] = timeout
        r = self.client.create_function(**kwargs)
        self.wait_active(name)
        return r

    def wait_active(self, name):
        self.client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    def wait_updated(self, name):
        self.client.get_waiter("function_updated_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    def invoke_json(self, **kwargs):
        r = self.client.invoke(**kwargs)
        body = r["Payload"].read()
        try:
            return r, json.loads(body)
        except ValueError as e:
            raise AssertionError(f"invoke payload is not JSON: {body!r}") from e

    # ---------------------------------------------------------------- control plane

    def test_create_without_publish(self):
        r = self.create(self.echo, self.echo_zip, "provided.al2023", "echo.handler")
        eq(status(r), 201, "CreateFunction HTTP status")
        self.check_config(r, self.echo, "$LATEST", self.echo_zip, "provided.al2023", "echo.handler",
                          state="Pending", update="InProgress")
        after = self.client.get_function_configuration(FunctionName=self.echo)
        self.check_config(after, self.echo, "$LATEST", self.echo_zip, "provided.al2023", "echo.handler")

    def test_create_with_publish(self):
        r = self.create(self.hello, self.hello_zip, "python3.11", "hello.handler", publish=True, timeout=10)
        eq(status(r), 201, "CreateFunction HTTP status")
        self.check_config(r, self.hello, "1", self.hello_zip, "python3.11", "hello.handler",
                          state="Pending", update="InProgress")
        v1 = self.client.get_function_configuration(FunctionName=self.hello, Qualifier="1")
        self.check_config(v1, self.hello, "1", self.hello_zip, "python3.11", "hello.handler")
        latest = self.client.get_function_configuration(FunctionName=self.hello)
        self.check_config(latest, self.hello, "$LATEST", self.hello_zip, "python3.11", "hello.handler")
        r = self.create(self.cc, self.cc_zip, "python3.11", "cc.handler", publish=False, timeout=10)
        self.check_config(r, self.cc, "$LATEST", self.cc_zip, "python3.11", "cc.handler",
                          state="Pending", update="InProgress")

    def test_waiter_function_active_v2(self):
        self.client.get_waiter("function_active_v2").wait(
            FunctionName=self.echo, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.client.get_waiter("function_active_v2").wait(
            FunctionName=self.hello, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.client.get_waiter("function_exists").wait(
            FunctionName=self.hello, WaiterConfig={"Delay": 1, "MaxAttempts": 3})

    def test_get_function(self):
        r = self.client.get_function(FunctionName=self.echo)
        eq(status(r), 200, "GetFunction HTTP status")
        self.check_config(r["Configuration"], self.echo, "$LATEST", self.echo_zip, "provided.al2023", "echo.handler")
        eq(r["Code"].get("RepositoryType"), "S3", "Code.RepositoryType")
        location = r["Code"]["Location"]
        with urllib.request.urlopen(location, timeout=30) as f:
            eq(f.status, 200, f"GET {location}")
            got = f.read()
        check(got == self.echo_zip, f"Code.Location {location} served {len(got)} bytes that differ from the "
                                    f"{len(self.echo_zip)}-byte zip that was uploaded")
        # A version, by Qualifier and by name:qualifier.
        for kwargs in ({"FunctionName": self.hello, "Qualifier": "1"}, {"FunctionName": f"{self.hello}:1"},
                       {"FunctionName": arn(self.hello, "1")}):
            r = self.client.get_function(**kwargs)
            self.check_config(r["Configuration"], self.hello, "1", self.hello_zip, "python3.11", "hello.handler")
            with urllib.request.urlopen(r["Code"]["Location"], timeout=30) as f:
                check(f.read() == self.hello_zip, f"{kwargs}: Code.Location serves another zip")

    def test_list_functions(self):
        r = self.client.list_functions()
        eq(status(r), 200, "ListFunctions HTTP status")
        by_name = {f["FunctionName"]: f for f in r["Functions"]}
        for name in (self.echo, self.hello, self.cc):
            check(name in by_name, f"{name} missing from ListFunctions: {sorted(by_name)}")
        self.check_config(by_name[self.echo], self.echo, "$LATEST", self.echo_zip, "provided.al2023", "echo.handler")
        self.check_config(by_name[self.hello], self.hello, "$LATEST", self.hello_zip, "python3.11", "hello.handler")
        # Pagination, one at a time.
        seen, marker, pages = [], None, 0
        while True:
            kwargs = {"MaxItems": 1}
            if marker:
                kwargs["Marker"] = marker
            page = self.client.list_functions(**kwargs)
            pages += 1
            check(len(page["Functions"]) <= 1, f"MaxItems=1 returned {len(page['Functions'])} functions")
            seen += [f["FunctionName"] for f in page["Functions"]]
            marker = page.get("NextMarker")
            if not marker:
                break
            check(pages < 1000, "ListFunctions pagination does not end")
        eq(len(seen), len(set(seen)), f"functions repeated across pages: {seen}")
        eq(sorted(seen), sorted(by_name), "functions seen by paging with MaxItems=1")
        check(pages >= 3, f"expected at least 3 pages, got {pages}")
        # The paginator does the same.
        names = [f["FunctionName"] for p in self.client.get_paginator("list_functions").paginate(
            PaginationConfig={"PageSize": 1}) for f in p["Functions"]]
        eq(sorted(names), sorted(by_name), "functions seen by the list_functions paginator")

    def test_publish_version(self):
        # hello was created with Publish=True: publishing again without a change returns version 1.
        r = self.client.publish_version(FunctionName=self.hello)
        eq(status(r), 201, "PublishVersion HTTP status")
        self.check_config(r, self.hello, "1", self.hello_zip, "python3.11", "hello.handler")
        # echo: 1, then the same 1 again.
        r = self.client.publish_version(FunctionName=self.echo)
        self.check_config(r, self.echo, "1", self.echo_zip, "provided.al2023", "echo.handler")
        r = self.client.publish_version(FunctionName=self.echo)
        eq(r["Version"], "1", "publish_version with no change (returns the latest version)")
        # The CodeSha256 precondition.
        r = self.client.publish_version(FunctionName=self.echo, CodeSha256=b64sha(self.echo_zip))
        eq(r["Version"], "1", "publish_version with the current CodeSha256")
        expect_error(self.exc.InvalidParameterValueException, self.client.publish_version,
                     FunctionName=self.echo, CodeSha256=b64sha(b"something else"))

    def test_publish_version_description(self):
        # PublishVersion's Description overrides the function's description for that version only;
        # it is not a change of the function, so publishing again still returns the same version.
        self.create(self.desc, self.echo_zip, "provided.al2023", "echo.handler")
        r = self.client.publish_version(FunctionName=self.desc, Description="first")
        self.check_config(r, self.desc, "1", self.echo_zip, "provided.al2023", "echo.handler")
        eq(r.get("Description"), "first", "Description of the published version")
        eq(self.client.get_function_configuration(FunctionName=self.desc).get("Description", ""), "",
           "$LATEST Description after publish_version(Description=...)")
        r = self.client.publish_version(FunctionName=self.desc)
        eq(r["Version"], "1", "publish_version (no Description) after publish_version(Description='first'), "
                              "with no change to the function")
        r = self.client.publish_version(FunctionName=self.desc, Description="first")
        eq(r["Version"], "1", "publish_version(Description='first') repeated with no change to the function")

    def test_update_function_code(self):
        before = self.client.get_function_configuration(FunctionName=self.echo)
        r = self.client.update_function_code(FunctionName=self.echo, ZipFile=self.echo_zip2)
        eq(status(r), 200, "UpdateFunctionCode HTTP status")
        self.check_config(r, self.echo, "$LATEST", self.echo_zip2, "provided.al2023", "echo.handler",
                          update="InProgress")
        check(r["RevisionId"] != before["RevisionId"], "RevisionId did not change on update_function_code")
        self.client.get_waiter("function_updated_v2").wait(
            FunctionName=self.echo, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.client.get_waiter("function_updated").wait(
            FunctionName=self.echo, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        # Version 1 keeps the old code.
        v1 = self.client.get_function(FunctionName=self.echo, Qualifier="1")
        eq(v1["Configuration"]["CodeSha256"], b64sha(self.echo_zip), "version 1 CodeSha256 after an update")
        # publish_version: the change becomes version 2, then 2 again.
        r = self.client.publish_version(FunctionName=self.echo)
        self.check_config(r, self.echo, "2", self.echo_zip2, "provided.al2023", "echo.handler")
        eq(self.client.publish_version(FunctionName=self.echo)["Version"], "2", "publish again with no change")
        # update with Publish=True: version 3 at once.
        r = self.client.update_function_code(FunctionName=self.echo, ZipFile=self.echo_zip3, Publish=True)
        eq(status(r), 200, "UpdateFunctionCode(Publish=True) HTTP status")
        self.check_config(r, self.echo, "3", self.echo_zip3, "provided.al2023", "echo.handler",
                          update="InProgress")
        self.wait_updated(self.echo)
        latest = self.client.get_function_configuration(FunctionName=self.echo)
        self.check_config(latest, self.echo, "$LATEST", self.echo_zip3, "provided.al2023", "echo.handler")
        self.client.get_waiter("function_updated_v2").wait(
            FunctionName=self.echo, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.client.get_waiter("published_version_active").wait(
            FunctionName=self.echo, Qualifier="3", WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        versions = self.client.list_versions_by_function(FunctionName=self.echo)["Versions"]
        eq([v["Version"] for v in versions], ["$LATEST", "1", "2", "3"], "ListVersionsByFunction versions")
        # RevisionId precondition.
        expect_error(self.exc.PreconditionFailedException, self.client.update_function_code,
                     FunctionName=self.echo, ZipFile=self.echo_zip, RevisionId=str(uuid.uuid4()))

    # ---------------------------------------------------------------- invoke

    def test_invoke_request_response(self):
        event = {"hello": "boto3", "n": [1, 2, 3], "nested": {"ok": True}}
        r, body = self.invoke_json(FunctionName=self.echo, Payload=json.dumps(event).encode())
        eq(r["StatusCode"], 200, "StatusCode")
        eq(r.get("ExecutedVersion"), "$LATEST", "ExecutedVersion")
        check("FunctionError" not in r, f"unexpected FunctionError {r.get('FunctionError')!r}")
        check("LogResult" not in r, "LogResult without LogType=Tail")
        eq(body, event, "echo-sh payload")
        # explicit InvocationType, and an empty payload (which is {}).
        r, body = self.invoke_json(FunctionName=self.echo, InvocationType="RequestResponse")
        eq(r["StatusCode"], 200, "StatusCode")
        eq(body, {}, "echo-sh payload for an empty request")
        # hello-py
        r, body = self.invoke_json(FunctionName=self.hello, Payload=b'{"name": "boto3"}')
        eq(r["StatusCode"], 200, "StatusCode")
        eq(body["message"], "hello boto3", "hello-py message")
        eq(body["request_id"], r["ResponseMetadata"]["RequestId"], "request id seen by the function vs x-amzn-RequestId")
        check(0 < body["remaining_ms"] <= 10_000, f"remaining_ms {body['remaining_ms']}")

    def test_invoke_dry_run(self):
        r = self.client.invoke(FunctionName=self.echo, InvocationType="DryRun", Payload=b"{}")
        eq(r["StatusCode"], 204, "DryRun StatusCode")
        eq(r["Payload"].read(), b"", "DryRun payload")
        expect_error(self.exc.ResourceNotFoundException, self.client.invoke,
                     FunctionName=self.missing, InvocationType="DryRun")

    def test_invoke_event(self):
        r = self.client.invoke(FunctionName=self.echo, InvocationType="Event", Payload=b'{"async": 1}')
        eq(r["StatusCode"], 202, "Event StatusCode")
        eq(r["Payload"].read(), b"", "Event payload")

    def test_invoke_log_tail(self):
        for name, line in ((self.hello, "hello-py got request"), (self.echo, "echo-sh got request")):
            r = self.client.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
            eq(r["StatusCode"], 200, "StatusCode")
            rid = r["ResponseMetadata"]["RequestId"]
            check(rid, "no x-amzn-RequestId")
            check("LogResult" in r, f"{name}: no LogResult with LogType=Tail")
            log = base64.b64decode(r["LogResult"]).decode("utf-8", "replace")
            check(f"START RequestId: {rid}" in log, f"{name}: LogResult lacks 'START RequestId: {rid}':\n{log}")
            check(f"{line} {rid}" in log, f"{name}: LogResult lacks the function's line '{line} {rid}':\n{log}")
            check(len(r["LogResult"]) <= 4096 * 4 // 3 + 4, f"LogResult longer than 4 KB: {len(r['LogResult'])}")

    def test_invoke_client_context(self):
        ctx = {"client": {"installation_id": "i-1", "app_title": "boto-test", "app_version_name": "1.0",
                          "app_version_code": "1", "app_package_name": "hearth.test"},
               "custom": {"who": "boto3", "n": 7}, "env": {"platform": "linux"}}
        cc = base64.b64encode(json.dumps(ctx).encode()).decode()
        r, body = self.invoke_json(FunctionName=self.cc, ClientContext=cc, Payload=b"{}")
        eq(r["StatusCode"], 200, "StatusCode")
        check("FunctionError" not in r, f"client-context function failed: {body}")
        eq(body["custom"], ctx["custom"], "context.client_context.custom")
        eq(body["env"], ctx["env"], "context.client_context.env")
        eq(body["function_version"], "$LATEST", "context.function_version")
        r, body = self.invoke_json(FunctionName=self.cc, Payload=b"{}")
        eq(body["custom"], None, "context.client_context without ClientContext")
        expect_error(self.exc.InvalidRequestContentException, self.client.invoke,
                     FunctionName=self.cc, ClientContext="!!not base64!!", Payload=b"{}")

    def test_invoke_function_name_forms(self):
        hello = self.hello
        cases = [
            ({"FunctionName": hello}, "$LATEST"),
            ({"FunctionName": f"{hello}:1"}, "1"),
            ({"FunctionName": f"{hello}:$LATEST"}, "$LATEST"),
            ({"FunctionName": arn(hello)}, "$LATEST"),
            ({"FunctionName": arn(hello, "1")}, "1"),
            ({"FunctionName": f"{ACCOUNT}:function:{hello}"}, "$LATEST"),
            ({"FunctionName": f"{ACCOUNT}:function:{hello}:1"}, "1"),
            ({"FunctionName": hello, "Qualifier": "$LATEST"}, "$LATEST"),
            ({"FunctionName": hello, "Qualifier": "1"}, "1"),
            ({"FunctionName": arn(hello), "Qualifier": "1"}, "1"),
            ({"FunctionName": f"{ACCOUNT}:function:{hello}", "Qualifier": "$LATEST"}, "$LATEST"),
        ]
        for kwargs, version in cases:
            r, body = self.invoke_json(Payload=b'{"name": "forms"}', **kwargs)
            eq(r["StatusCode"], 200, f"{kwargs}: StatusCode")
            eq(r.get("ExecutedVersion"), version, f"{kwargs}: ExecutedVersion")
            check("FunctionError" not in r, f"{kwargs}: FunctionError {body}")
            eq(body.get("message"), "hello forms", f"{kwargs}: payload")
        # The invoked ARN reaches the function as given (qualifier included).
        for kwargs in ({"FunctionName": self.cc}, {"FunctionName": self.cc, "Qualifier": "$LATEST"},
                       {"FunctionName": arn(self.cc)}):
            _, body = self.invoke_json(Payload=b"{}", **kwargs)
            want = arn(self.cc, "$LATEST") if "Qualifier" in kwargs else arn(self.cc)
            eq(body["invoked_function_arn"], want, f"{kwargs}: context.invoked_function_arn")
        # A version that does not exist, and a conflicting qualifier.
        expect_error(self.exc.ResourceNotFoundException, self.client.invoke,
                     FunctionName=hello, Qualifier="99", Payload=b"{}")
        expect_error(self.exc.ResourceNotFoundException, self.client.invoke,
                     FunctionName=f"{hello}:99", Payload=b"{}")
        expect_error(self.exc.InvalidParameterValueException, self.client.invoke,
                     FunctionName=f"{hello}:1", Qualifier="$LATEST", Payload=b"{}")

    def test_invoke_function_error(self):
        r, body = self.invoke_json(FunctionName=self.hello, Payload=b'{"fail": true}')
        eq(r["StatusCode"], 200, "function error StatusCode (a function error is still HTTP 200)")
        eq(r.get("FunctionError"), "Unhandled", "FunctionError")
        eq(r.get("ExecutedVersion"), "$LATEST", "ExecutedVersion")
        check(isinstance(body, dict), f"error payload {body!r}")
        eq(body.get("errorType"), "HelloError", "errorType")
        eq(body.get("errorMessage"), "asked to fail", "errorMessage")
        # The function keeps working afterwards.
        r, body = self.invoke_json(FunctionName=self.hello, Payload=b"{}")
        check("FunctionError" not in r, f"invoke after a function error: {body}")
        eq(body["message"], "hello world", "payload after a function error")

    # ---------------------------------------------------------------- errors

    def test_errors(self):
        e = expect_error(self.exc.ResourceNotFoundException, self.client.get_function, FunctionName=self.missing)
        eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 404, "ResourceNotFoundException HTTP status")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_function_configuration,
                     FunctionName=self.missing)
        expect_error(self.exc.ResourceNotFoundException, self.client.get_function,
                     FunctionName=self.hello, Qualifier="42")
        e = expect_error(self.exc.ResourceNotFoundException, self.client.invoke,
                         FunctionName=self.missing, Payload=b"{}")
        eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 404, "invoke unknown HTTP status")
        expect_error(self.exc.ResourceNotFoundException, self.client.invoke,
                     FunctionName=arn(self.missing), Payload=b"{}")
        expect_error(self.exc.ResourceNotFoundException, self.client.update_function_code,
                     FunctionName=self.missing, ZipFile=self.echo_zip)
        expect_error(self.exc.ResourceNotFoundException, self.client.publish_version, FunctionName=self.missing)
        expect_error(self.exc.ResourceNotFoundException, self.client.delete_function, FunctionName=self.missing)
        e = expect_error(self.exc.InvalidParameterValueException, self.create,
                         f"{self.missing}-rt", self.echo_zip, "cobol85", "x.handler")
        eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 400, "InvalidParameterValueException HTTP status")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_function, FunctionName=f"{self.missing}-rt")
        expect_error(self.exc.InvalidParameterValueException, self.create,
                     f"{self.missing}-zip", b"this is not a zip", "python3.11", "hello.handler")
        e = expect_error(self.exc.ResourceConflictException, self.create,
                         self.echo, self.echo_zip, "provided.al2023", "echo.handler")
        eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 409, "ResourceConflictException HTTP status")
        for payload in (b"not json", b"{", b'{"a": }'):
            e = expect_error(self.exc.InvalidRequestContentException, self.client.invoke,
                             FunctionName=self.echo, Payload=payload)
            eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 400, "InvalidRequestContentException HTTP status")

    def test_delete_function(self):
        r = self.create(self.gone, self.echo_zip, "provided", "x", publish=True)
        eq(r["Version"], "1", "Version")
        r = self.client.update_function_code(FunctionName=self.gone, ZipFile=self.echo_zip2, Publish=True)
        eq(r["Version"], "2", "Version")
        # Deleting one version leaves the function.
        r = self.client.delete_function(FunctionName=self.gone, Qualifier="1")
        check(status(r) in (200, 204), f"DeleteFunction(Qualifier) HTTP status {status(r)}")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_function, FunctionName=self.gone,
                     Qualifier="1")
        self.client.get_function(FunctionName=self.gone, Qualifier="2")
        # Deleting the function.
        r = self.client.delete_function(FunctionName=self.gone)
        check(status(r) in (200, 204), f"DeleteFunction HTTP status {status(r)}")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_function, FunctionName=self.gone)
        expect_error(self.exc.ResourceNotFoundException, self.client.get_function, FunctionName=self.gone,
                     Qualifier="2")
        expect_error(self.exc.ResourceNotFoundException, self.client.invoke, FunctionName=self.gone, Payload=b"{}")
        names = [f["FunctionName"] for f in self.client.list_functions()["Functions"]]
        check(self.gone not in names, "deleted function still listed")
        # The name can be used again, starting from version 1.
        r = self.create(self.gone, self.echo_zip, "provided", "x", publish=True)
        eq(r["Version"], "1", "Version after re-creating a deleted function")
        self.client.delete_function(FunctionName=self.gone)

    def test_vpc_config(self):
        """VpcConfig (egress through the tenant's proxy): set, reported, cleared, validated."""
        name = self.gone + "-vpc"
        self.client.create_function(FunctionName=name, Runtime="provided", Handler="x",
                                    Role=f"arn:aws:iam::{ACCOUNT}:role/lambda-role",
                                    Code={"ZipFile": self.echo_zip},
                                    VpcConfig={"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]})
        self.wait_active(name)
        vpc = self.client.get_function_configuration(FunctionName=name)["VpcConfig"]
        eq((vpc["SubnetIds"], vpc["SecurityGroupIds"], vpc["VpcId"]), (["subnet-1"], ["sg-1"], "hearth-egress"),
           "VpcConfig with subnets")
        r = self.client.update_function_configuration(FunctionName=name,
                                                       VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
        eq(r["VpcConfig"]["VpcId"], "", "VpcId after clearing VpcConfig")
        self.wait_updated(name)
        vpc = self.client.get_function(FunctionName=name)["Configuration"]["VpcConfig"]
        eq((vpc["SubnetIds"], vpc["VpcId"]), ([], ""), "GetFunction VpcConfig after clearing")
        expect_error(self.exc.InvalidParameterValueException, self.client.update_function_configuration,
                     FunctionName=name, VpcConfig={"SubnetIds": [f"subnet-{i}" for i in range(17)]})
        self.client.delete_function(FunctionName=name)

    # ---------------------------------------------------------------- resources

    def raw(self, method, path, body):
        """A request as a hostile client would send it (no botocore validation); (status, headers, json)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as f:
                raw = f.read()
                return f.status, f.headers, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, e.headers, json.loads(raw) if raw else None

    def publish_two(self, name, tags=None):
        """echo-sh published twice: versions 1 and 2 differ in their environment."""
        kwargs = dict(FunctionName=name, Runtime="provided.al2023", Handler="echo.handler",
                      Role=f"arn:aws:iam::{ACCOUNT}:role/lambda-role", Code={"ZipFile": self.echo_zip},
                      Environment={"Variables": {"V": "1"}},
                      # A full vCPU under the CPU quota: the weighted-alias check invokes it 1000 times.
                      MemorySize=1769)
        if tags:
            kwargs["Tags"] = tags
        self.client.create_function(**kwargs)
        self.wait_active(name)
        eq(self.client.publish_version(FunctionName=name)["Version"], "1", "first version")
        self.client.update_function_configuration(FunctionName=name, Environment={"Variables": {"V": "2"}})
        self.wait_updated(name)
        eq(self.client.publish_version(FunctionName=name)["Version"], "2", "second version")

    def test_aliases(self):
        name = self.aliased
        self.publish_two(name)
        r = self.client.create_alias(FunctionName=name, Name="live", FunctionVersion="1", Description="prod")
        eq(status(r), 201, "CreateAlias HTTP status")
        eq(r["AliasArn"], arn(name, "live"), "AliasArn")
        eq((r["Name"], r["FunctionVersion"], r["Description"]), ("live", "1", "prod"), "alias fields")
        check(REVISION_ID.match(r["RevisionId"]), f"alias RevisionId {r['RevisionId']!r}")
        got = self.client.get_alias(FunctionName=name, Name="live")
        eq(got["RevisionId"], r["RevisionId"], "GetAlias RevisionId")
        expect_error(self.exc.ResourceConflictException, self.client.create_alias,
                     FunctionName=name, Name="live", FunctionVersion="1")
        expect_error(self.exc.ResourceNotFoundException, self.client.create_alias,
                     FunctionName=name, Name="ghost", FunctionVersion="42")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_alias, FunctionName=name, Name="ghost")
        expect_error(self.exc.InvalidParameterValueException, self.client.create_alias,
                     FunctionName=name, Name="bad", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
        # Invoking through the alias runs its version.
        for kwargs in ({"FunctionName": f"{name}:live"}, {"FunctionName": name, "Qualifier": "live"},
                       {"FunctionName": arn(name, "live")}):
            resp, body = self.invoke_json(Payload=b'{"via": "alias"}', **kwargs)
            eq(resp.get("ExecutedVersion"), "1", f"{kwargs}: ExecutedVersion")
            eq(body, {"via": "alias"}, f"{kwargs}: payload")
        # RevisionId precondition, then a real update.
        expect_error(self.exc.PreconditionFailedException, self.client.update_alias,
                     FunctionName=name, Name="live", FunctionVersion="2", RevisionId=str(uuid.uuid4()))
        u = self.client.update_alias(FunctionName=name, Name="live", FunctionVersion="2", RevisionId=r["RevisionId"])
        eq((u["FunctionVersion"], u["Description"]), ("2", "prod"), "UpdateAlias is partial")
        check(u["RevisionId"] != r["RevisionId"], "UpdateAlias did not change the RevisionId")
        resp, _ = self.invoke_json(FunctionName=f"{name}:live", Payload=b"{}")
        eq(resp.get("ExecutedVersion"), "2", "ExecutedVersion after update_alias")
        self.client.create_alias(FunctionName=name, Name="old", FunctionVersion="1")
        self.client.create_alias(FunctionName=name, Name="head", FunctionVersion="$LATEST")
        names = sorted(a["Name"] for a in self.client.list_aliases(FunctionName=name)["Aliases"])
        eq(names, ["head", "live", "old"], "ListAliases")
        eq([a["Name"] for a in self.client.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"]],
           ["old"], "ListAliases(FunctionVersion=1)")
        paged = [a["Name"] for p in self.client.get_paginator("list_aliases").paginate(
            FunctionName=name, PaginationConfig={"PageSize": 1}) for a in p["Aliases"]]
        eq(paged, ["head", "live", "old"], "list_aliases paginator")
        # A version an alias points to cannot be deleted.
        e = expect_error(self.exc.ResourceConflictException, self.client.delete_function, FunctionName=name, Qualifier="1")
        eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 409, "delete aliased version HTTP status")
        r = self.client.delete_alias(FunctionName=name, Name="old")
        eq(status(r), 204, "DeleteAlias HTTP status")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_alias, FunctionName=name, Name="old")
        self.client.delete_function(FunctionName=name, Qualifier="1")
        expect_error(self.exc.ResourceNotFoundException, self.client.invoke, FunctionName=f"{name}:old", Payload=b"{}")

    def test_weighted_alias(self):
        name = self.aliased
        self.client.update_alias(FunctionName=name, Name="live", FunctionVersion="2",
                                 RoutingConfig={"AdditionalVersionWeights": {}})
        self.client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {"V": "3"}})
        self.wait_updated(name)
        eq(self.client.publish_version(FunctionName=name)["Version"], "3", "third version")
        # A version that is an additional version of an alias cannot be deleted either.
        r = self.client.update_alias(FunctionName=name, Name="live", FunctionVersion="2",
                                     RoutingConfig={"AdditionalVersionWeights": {"3": 0.1}})
        eq(r["RoutingConfig"]["AdditionalVersionWeights"], {"3": 0.1}, "RoutingConfig")
        expect_error(self.exc.ResourceConflictException, self.client.delete_function, FunctionName=name, Qualifier="3")
        n, counts = 1000, {}
        for _ in range(n):
            resp = self.client.invoke(FunctionName=f"{name}:live", Payload=b"{}")
            resp["Payload"].read()
            v = resp.get("ExecutedVersion")
            counts[v] = counts.get(v, 0) + 1
        check(set(counts) <= {"2", "3"}, f"versions run through the alias: {counts}")
        share = counts.get("3", 0) / n
        print(f"     weighted alias 90/10 over {n} invokes: {counts}", flush=True)
        check(0.06 <= share <= 0.14, f"version 3 ran {share:.1%} of {n} invokes at weight 10%: {counts}")

    def test_provisioned_concurrency(self):
        name = self.aliased
        r = self.client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="2", ProvisionedConcurrentExecutions=2)
        eq(status(r), 202, "PutProvisionedConcurrencyConfig HTTP status")
        eq(r["Status"], "IN_PROGRESS", "Status right after put")
        eq(r["RequestedProvisionedConcurrentExecutions"], 2, "Requested")
        deadline = time.time() + 60
        while True:
            g = self.client.get_provisioned_concurrency_config(FunctionName=name, Qualifier="2")
            if g["Status"] != "IN_PROGRESS" or time.time() > deadline:
                break
            time.sleep(0.1)
        eq(g["Status"], "READY", "Status once the agent holds the instances")
        eq(g["AllocatedProvisionedConcurrentExecutions"], 2, "Allocated")
        configs = self.client.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
        eq([c["FunctionArn"] for c in configs], [arn(name, "2")], "ListProvisionedConcurrencyConfigs")
        expect_error(self.exc.InvalidParameterValueException, self.client.put_provisioned_concurrency_config,
                     FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1)
        eq(status(self.client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="2")), 204,
           "DeleteProvisionedConcurrencyConfig HTTP status")
        expect_error(self.exc.ProvisionedConcurrencyConfigNotFoundException,
                     self.client.get_provisioned_concurrency_config, FunctionName=name, Qualifier="2")

    def test_concurrency(self):
        self.publish_two(self.res, tags={"team": "core"})
        eq(self.client.get_function_concurrency(FunctionName=self.res).get("ReservedConcurrentExecutions"), None,
           "no reserved concurrency")
        r = self.client.put_function_concurrency(FunctionName=self.res, ReservedConcurrentExecutions=5)
        eq((status(r), r["ReservedConcurrentExecutions"]), (200, 5), "PutFunctionConcurrency")
        eq(self.client.get_function_concurrency(FunctionName=self.res)["ReservedConcurrentExecutions"], 5,
           "GetFunctionConcurrency")
        eq(self.client.get_function(FunctionName=self.res)["Concurrency"], {"ReservedConcurrentExecutions": 5},
           "GetFunction Concurrency")
        eq(status(self.client.delete_function_concurrency(FunctionName=self.res)), 204, "DeleteFunctionConcurrency")
        check("Concurrency" not in self.client.get_function(FunctionName=self.res), "Concurrency after delete")
        expect_error(self.exc.ResourceNotFoundException, self.client.put_function_concurrency,
                     FunctionName=self.missing, ReservedConcurrentExecutions=1)

    def test_function_url(self):
        r = self.client.create_function_url_config(FunctionName=self.res, AuthType="NONE",
                                                   Cors={"AllowOrigins": ["*"], "MaxAge": 60})
        eq(status(r), 201, "CreateFunctionUrlConfig HTTP status")
        eq(r["FunctionUrl"], f"{self.endpoint}/fn/{self.res}/", "FunctionUrl")
        eq(r["FunctionArn"], arn(self.res), "FunctionArn")
        eq(r["Cors"], {"AllowOrigins": ["*"], "MaxAge": 60}, "Cors")
        check(isinstance(r["CreationTime"], str), f"CreationTime {r['CreationTime']!r}")
        expect_error(self.exc.ResourceConflictException, self.client.create_function_url_config,
                     FunctionName=self.res, AuthType="NONE")
        u = self.client.update_function_url_config(FunctionName=self.res, AuthType="AWS_IAM", InvokeMode="RESPONSE_STREAM")
        eq((u["AuthType"], u["InvokeMode"]), ("AWS_IAM", "RESPONSE_STREAM"), "UpdateFunctionUrlConfig")
        g = self.client.get_function_url_config(FunctionName=self.res)
        eq((g["AuthType"], g["FunctionUrl"]), ("AWS_IAM", r["FunctionUrl"]), "GetFunctionUrlConfig")
        check(isinstance(g["LastModifiedTime"], str), "LastModifiedTime")
        self.client.create_alias(FunctionName=self.res, Name="live", FunctionVersion="2")
        q = self.client.create_function_url_config(FunctionName=self.res, Qualifier="live", AuthType="NONE")
        eq(q["FunctionUrl"], f"{self.endpoint}/fn/{self.res}:live/", "FunctionUrl of an alias")
        urls = self.client.list_function_url_configs(FunctionName=self.res)["FunctionUrlConfigs"]
        eq(sorted(c["FunctionArn"] for c in urls), [arn(self.res), arn(self.res, "live")], "ListFunctionUrlConfigs")
        eq(status(self.client.delete_function_url_config(FunctionName=self.res)), 204, "DeleteFunctionUrlConfig")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_function_url_config, FunctionName=self.res)
        expect_error(self.exc.InvalidParameterValueException, self.client.create_function_url_config,
                     FunctionName=self.res, Qualifier="1", AuthType="NONE")

    def test_event_invoke_config(self):
        dest = f"arn:aws:sqs:{REGION}:{ACCOUNT}:failures"
        r = self.client.put_function_event_invoke_config(
            FunctionName=self.res, MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": dest}})
        eq(status(r), 200, "PutFunctionEventInvokeConfig HTTP status")
        check(hasattr(r["LastModified"], "timestamp"), f"LastModified {r['LastModified']!r} is not a timestamp")
        check(abs(r["LastModified"].timestamp() - time.time()) < 300, f"LastModified {r['LastModified']}")
        eq(r["FunctionArn"], arn(self.res, "$LATEST"), "FunctionArn")
        eq(r["DestinationConfig"]["OnFailure"], {"Destination": dest}, "OnFailure")
        u = self.client.update_function_event_invoke_config(FunctionName=self.res, MaximumEventAgeInSeconds=300)
        eq((u["MaximumRetryAttempts"], u["MaximumEventAgeInSeconds"]), (1, 300), "Update is partial")
        p = self.client.put_function_event_invoke_config(FunctionName=self.res, MaximumEventAgeInSeconds=60)
        check("MaximumRetryAttempts" not in p, f"Put replaces: {p}")
        g = self.client.get_function_event_invoke_config(FunctionName=self.res)
        eq(g["MaximumEventAgeInSeconds"], 60, "GetFunctionEventInvokeConfig")
        self.client.put_function_event_invoke_config(FunctionName=self.res, Qualifier="live", MaximumRetryAttempts=0)
        listed = self.client.list_function_event_invoke_configs(FunctionName=self.res)["FunctionEventInvokeConfigs"]
        eq(sorted(c["FunctionArn"] for c in listed), [arn(self.res, "$LATEST"), arn(self.res, "live")],
           "ListFunctionEventInvokeConfigs")
        expect_error(self.exc.InvalidParameterValueException, self.client.put_function_event_invoke_config,
                     FunctionName=self.res, MaximumRetryAttempts=3)
        expect_error(self.exc.InvalidParameterValueException, self.client.put_function_event_invoke_config,
                     FunctionName=self.res, MaximumEventAgeInSeconds=21601)
        eq(status(self.client.delete_function_event_invoke_config(FunctionName=self.res)), 204,
           "DeleteFunctionEventInvokeConfig")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_function_event_invoke_config,
                     FunctionName=self.res)

    def test_permissions(self):
        r = self.client.add_permission(FunctionName=self.res, StatementId="s3-invoke", Action="lambda:InvokeFunction",
                                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::my-bucket",
                                       SourceAccount=ACCOUNT)
        eq(status(r), 201, "AddPermission HTTP status")
        stmt = json.loads(r["Statement"])
        eq((stmt["Sid"], stmt["Effect"], stmt["Action"]), ("s3-invoke", "Allow", "lambda:InvokeFunction"), "Statement")
        eq(stmt["Principal"], {"Service": "s3.amazonaws.com"}, "Principal")
        eq(stmt["Resource"], arn(self.res), "Resource")
        eq(stmt["Condition"]["ArnLike"]["AWS:SourceArn"], "arn:aws:s3:::my-bucket", "Condition")
        expect_error(self.exc.ResourceConflictException, self.client.add_permission, FunctionName=self.res,
                     StatementId="s3-invoke", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
        self.client.add_permission(FunctionName=self.res, StatementId="url", Action="lambda:InvokeFunctionUrl",
                                   Principal="*", FunctionUrlAuthType="NONE")
        got = self.client.get_policy(FunctionName=self.res)
        doc = json.loads(got["Policy"])
        eq(doc["Version"], "2012-10-17", "policy Version")
        eq([s["Sid"] for s in doc["Statement"]], ["s3-invoke", "url"], "policy statements")
        check(REVISION_ID.match(got["RevisionId"]), f"policy RevisionId {got['RevisionId']!r}")
        expect_error(self.exc.PreconditionFailedException, self.client.remove_permission,
                     FunctionName=self.res, StatementId="url", RevisionId=str(uuid.uuid4()))
        eq(status(self.client.remove_permission(FunctionName=self.res, StatementId="url")), 204, "RemovePermission")
        self.client.remove_permission(FunctionName=self.res, StatementId="s3-invoke")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_policy, FunctionName=self.res)
        expect_error(self.exc.ResourceNotFoundException, self.client.remove_permission,
                     FunctionName=self.res, StatementId="s3-invoke")

    def test_tags(self):
        res_arn = arn(self.res)
        eq(self.client.get_function(FunctionName=self.res)["Tags"], {"team": "core"}, "GetFunction Tags")
        eq(status(self.client.tag_resource(Resource=res_arn, Tags={"env": "test", "owner": "boto"})), 204, "TagResource")
        eq(self.client.list_tags(Resource=res_arn)["Tags"], {"team": "core", "env": "test", "owner": "boto"}, "ListTags")
        eq(status(self.client.untag_resource(Resource=res_arn, TagKeys=["team", "owner"])), 204, "UntagResource")
        eq(self.client.list_tags(Resource=res_arn)["Tags"], {"env": "test"}, "ListTags after untag")
        expect_error(self.exc.ResourceNotFoundException, self.client.list_tags, Resource=arn(self.missing))
        expect_error(self.exc.InvalidParameterValueException, self.client.tag_resource,
                     Resource=res_arn, Tags={"aws:reserved": "x"})

    def test_resource_hostile_bodies(self):
        f = self.res
        cases = [
            ("POST", f"/2015-03-31/functions/{f}/aliases", {"Name": "h", "FunctionVersion": 2}, "FunctionVersion"),
            ("POST", f"/2015-03-31/functions/{f}/aliases",
             {"Name": "h", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 1.5}}}, "1.0"),
            ("PUT", f"/2017-10-31/functions/{f}/concurrency", {"ReservedConcurrentExecutions": "many"},
             "ReservedConcurrentExecutions"),
            ("PUT", f"/2017-10-31/functions/{f}/concurrency", {"ReservedConcurrentExecutions": -3},
             "reservedConcurrentExecutions"),
            ("POST", f"/2021-10-31/functions/{f}/url", {"AuthType": "NONE", "Cors": {"MaxAge": "long"}}, "MaxAge"),
            ("PUT", f"/2019-09-25/functions/{f}/event-invoke-config", {"MaximumRetryAttempts": [2]},
             "MaximumRetryAttempts"),
            ("POST", f"/2015-03-31/functions/{f}/policy", {"StatementId": {"a": 1}, "Action": "*", "Principal": "*"},
             "StatementId"),
            ("POST", f"/2015-03-31/functions/{f}/aliases", b'{"Name": "h", ', "json"),
        ]
        for method, path, body, needle in cases:
            code, headers, payload = self.raw(method, path, body)
            eq(code, 400, f"{method} {path} {body!r}: HTTP status")
            check(headers.get("x-amzn-ErrorType") in ("InvalidParameterValueException", "InvalidRequestContentException"),
                  f"{body!r}: error type {headers.get('x-amzn-ErrorType')!r}")
            check(needle in payload.get("message", ""), f"{body!r}: message {payload!r} should name {needle!r}")
        check("h" not in [a["Name"] for a in self.client.list_aliases(FunctionName=f)["Aliases"]],
              "a refused alias was stored")
        # Unknown fields are ignored.
        code, _, payload = self.raw("POST", f"/2015-03-31/functions/{f}/aliases",
                                    {"Name": "extra", "FunctionVersion": "1", "NotAField": {"x": [1]}})
        eq(code, 201, f"unknown fields: {payload}")
        eq(self.client.get_alias(FunctionName=f, Name="extra")["FunctionVersion"], "1", "alias with unknown fields")
        # Deleting the function deletes its aliases and other resources.
        self.client.delete_function(FunctionName=f)
        self.publish_two(f)
        eq(self.client.list_aliases(FunctionName=f)["Aliases"], [], "aliases after re-creating the function")
        eq(self.client.list_tags(Resource=arn(f))["Tags"], {}, "tags after re-creating the function")
        expect_error(self.exc.ResourceNotFoundException, self.client.get_function_url_config, FunctionName=f)
        self.client.delete_function(FunctionName=f)

    # ---------------------------------------------------------------- runner

    ORDER = [
        "test_create_without_publish",
        "test_create_with_publish",
        "test_waiter_function_active_v2",
        "test_get_function",
        "test_list_functions",
        "test_publish_version",
        "test_publish_version_description",
        "test_invoke_request_response",
        "test_invoke_dry_run",
        "test_invoke_event",
        "test_invoke_log_tail",
        "test_invoke_client_context",
        "test_invoke_function_name_forms",
        "test_invoke_function_error",
        "test_update_function_code",
        "test_errors",
        "test_delete_function",
        "test_vpc_config",
        "test_aliases",
        "test_weighted_alias",
        "test_provisioned_concurrency",
        "test_concurrency",
        "test_function_url",
        "test_event_invoke_config",
        "test_permissions",
        "test_tags",
        "test_resource_hostile_bodies",
    ]

    def run(self):
        print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}, endpoint {self.endpoint}", flush=True)
        passed, failed = [], []
        for name in self.ORDER:
            started = time.monotonic()
            try:
                getattr(self, name)()
            except Exception:  # noqa: BLE001 - report every failure and go on
                failed.append(name)
                print(f"FAIL {name} ({time.monotonic() - started:.2f}s)\n{traceback.format_exc()}", flush=True)
            else:
                passed.append(name)
                print(f"ok   {name} ({time.monotonic() - started:.2f}s)", flush=True)
        if failed:
            print("failed: " + ", ".join(failed))
        print(f"{len(passed)} passed, {len(failed)} failed")
        return not failed


def main():
    args = sys.argv[1:]
    endpoint = args[0] if args else os.environ.get("HEARTH_ENDPOINT")
    if not endpoint:
        sys.exit("usage: boto3_compat.py ENDPOINT [EXAMPLES_DIR] (or set HEARTH_ENDPOINT)")
    here = os.path.dirname(os.path.abspath(__file__))
    examples = args[1] if len(args) > 1 else os.environ.get(
        "HEARTH_EXAMPLES", os.path.join(here, "..", "examples", "functions"))
    sys.exit(0 if Compat(endpoint, examples).run() else 1)


if __name__ == "__main__":
    main()
