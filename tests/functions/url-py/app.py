"""url-py: a function behind a function URL (tests/urls.rs). Handler: ``app.handler``.

It answers by the event's ``rawPath``:
  /echo...     the event itself, plus the ARN and version that ran (the plain-JSON shortcut)
  /full        a full response object: 201, headers, two cookies, a text body
  /binary      the request body back as binary (isBase64Encoded)
  /fail        raises (a function error)
  /badheader   a header value with a newline (not a valid HTTP header)
"""

import base64


def handler(event, context):
    path = event.get("rawPath", "")
    if path.startswith("/echo"):
        return {
            "event": event,
            "arn": context.invoked_function_arn,
            "version": context.function_version,
        }
    if path == "/full":
        return {
            "statusCode": 201,
            "headers": {"content-type": "text/plain", "x-custom": "yes"},
            "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
            "body": "created",
        }
    if path == "/binary":
        body = event.get("body", "")
        if not event.get("isBase64Encoded"):
            body = base64.b64encode(body.encode()).decode()
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": body,
            "isBase64Encoded": True,
        }
    if path == "/fail":
        raise RuntimeError("asked to fail")
    if path == "/badheader":
        return {"statusCode": 200, "headers": {"x-bad": "a\nb"}, "body": "x"}
    return {"statusCode": 404, "body": "no route " + path}
