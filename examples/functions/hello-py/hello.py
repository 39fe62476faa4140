"""hello-py: a sample hearth function for the python3.11 runtime. Handler: ``hello.handler``.

Event fields it understands (all optional):
  name   -- who to greet (default "world")
  sleep  -- seconds to sleep before answering (tests use it for timeouts)
  fail   -- when true, raise an exception (tests use it for function errors)

``count`` in the answer counts the invocations this instance has handled, so it grows while
the instance stays warm and starts again at 1 after a cold start.
"""

import time

COUNT = 0


class HelloError(Exception):
    """The error raised when the event asks for one."""


def handler(event, context):
    global COUNT
    COUNT += 1
    if not isinstance(event, dict):
        event = {}
    print(f"hello-py got request {context.aws_request_id} (count {COUNT})", flush=True)
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
    if event.get("fail") is True:
        raise HelloError("asked to fail")
    return {
        "message": "hello " + str(event.get("name", "world")),
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "count": COUNT,
    }
