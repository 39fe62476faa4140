"""HTTP/3 client for tests/tls.rs, built on aioquic (an implementation hearth did not write).

Usage: h3_client.py HOST PORT CAFILE < requests.json > responses.json
Requests: [{"method", "path", "headers": [[k, v]], "body_b64"}], sent one after another on one
QUIC connection. Responses: [{"status", "headers": [[k, v]], "body_b64"}] or [{"error": "..."}].
"""

import asyncio
import base64
import json
import sys

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamReset

TIMEOUT = 60


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.waiters = {}
        self.answers = {}

    def quic_event_received(self, event):
        if isinstance(event, StreamReset) and event.stream_id in self.waiters:
            self.waiters.pop(event.stream_id).set_result(
                {"error": f"stream reset with code {event.error_code}"}
            )
            return
        for ev in self.http.handle_event(event):
            sid = ev.stream_id
            answer = self.answers.setdefault(sid, {"headers": [], "body": b""})
            if isinstance(ev, HeadersReceived):
                answer["headers"] += ev.headers
            elif isinstance(ev, DataReceived):
                answer["body"] += ev.data
            if getattr(ev, "stream_ended", False) and sid in self.waiters:
                self.waiters.pop(sid).set_result(answer)

    async def request(self, authority, req):
        sid = self._quic.get_next_available_stream_id()
        body = base64.b64decode(req.get("body_b64", ""))
        headers = [
            (b":method", req["method"].encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", req["path"].encode()),
        ] + [(k.lower().encode(), v.encode()) for k, v in req.get("headers", [])]
        fut = asyncio.get_running_loop().create_future()
        self.waiters[sid] = fut
        self.http.send_headers(sid, headers, end_stream=not body)
        if body:
            self.http.send_data(sid, body, end_stream=True)
        self.transmit()
        answer = await asyncio.wait_for(fut, TIMEOUT)
        if "error" in answer:
            return answer
        hs = [(k.decode(), v.decode()) for k, v in answer["headers"]]
        status = int(dict(hs).get(":status", "0"))
        return {
            "status": status,
            "headers": [[k, v] for k, v in hs if not k.startswith(":")],
            "body_b64": base64.b64encode(answer["body"]).decode(),
        }


async def main(host, port, cafile):
    requests = json.load(sys.stdin)
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
    config.load_verify_locations(cafile)
    out = []
    async with connect(host, port, configuration=config, create_protocol=Client) as client:
        for req in requests:
            try:
                out.append(await client.request(f"localhost:{port}", req))
            except Exception as e:  # reported per request; the test decides
                out.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
