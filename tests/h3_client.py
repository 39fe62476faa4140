"""HTTP/3 client for tests/tls.rs, built on aioquic (an implementation hearth did not write).

Usage: h3_client.py HOST PORT CAFILE [0rtt] < requests.json > responses.json
Requests: [{"method", "path", "headers": [[k, v]], "body_b64"}], sent one after another on one
QUIC connection. Responses: [{"status", "headers": [[k, v]], "body_b64"}] or [{"error": "..."}].
With `0rtt`, a first connection fetches a session ticket (GET /) and the requests then go out as
0-RTT early data on a resumed connection; each response says whether the server accepted early
data (`early_data_accepted`).
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
from aioquic.quic.events import HandshakeCompleted, StreamReset

TIMEOUT = 60


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.waiters = {}
        self.answers = {}
        self.early_data_accepted = None

    def quic_event_received(self, event):
        if isinstance(event, HandshakeCompleted):
            self.early_data_accepted = event.early_data_accepted
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


async def main(host, port, cafile, zero_rtt):
    requests = json.load(sys.stdin)
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
    config.load_verify_locations(cafile)
    authority = f"localhost:{port}"
    if zero_rtt:
        tickets = []
        async with connect(
            host, port, configuration=config, create_protocol=Client,
            session_ticket_handler=tickets.append,
        ) as first:
            await first.request(authority, {"method": "GET", "path": "/"})
        if not tickets:
            raise SystemExit("the server issued no session ticket")
        config.session_ticket = tickets[-1]
    out = []
    async with connect(
        host, port, configuration=config, create_protocol=Client, wait_connected=not zero_rtt
    ) as client:
        for req in requests:
            try:
                answer = await client.request(authority, req)
            except Exception as e:  # reported per request; the test decides
                answer = {"error": f"{type(e).__name__}: {e}"}
            answer["early_data_accepted"] = client.early_data_accepted
            out.append(answer)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    zero_rtt = len(sys.argv) > 4 and sys.argv[4] == "0rtt"
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], zero_rtt))
