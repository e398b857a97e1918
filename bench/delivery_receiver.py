"""A webhook receiver for the delivery benchmark: answers 200 at once and notes when each POST came.

One process, uvloop and httptools, no framework: per request it does no more than parse, note
``(time.time(), webhook-id)`` and write a fixed answer, so it stays far from being the bottleneck.
Control paths (GET), for the benchmark that drives it:

- ``/_count``: how many POSTs were received so far;
- ``/_records?since=N``: the receipts from the N-th on, one ``<epoch seconds> <webhook-id>`` a line;
- ``/_sample``: the headers (JSON) and body of the last POST, for the peer to send the same bytes;
- ``/_reset``: forget every receipt.

    python bench/delivery_receiver.py --port 19xxx
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import time
from typing import Any

import httptools
import uvloop

ANSWER = b'{"received":true}'
OK = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(ANSWER)).encode()
    + b"\r\n\r\n"
    + ANSWER
)


class State:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.ids: list[bytes] = []
        self.sample_headers: dict[str, str] = {}
        self.sample_body = b""


class Receiver(asyncio.Protocol):
    """One connection: HTTP/1.1 keep-alive requests, parsed by httptools."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.webhook_id = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.body = []
        self.webhook_id = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"webhook-id":
            self.webhook_id = value
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        now = time.time()
        assert self.transport is not None
        if self.parser.get_method() == b"POST":
            state = self.state
            state.times.append(now)
            state.ids.append(self.webhook_id or b"-")
            # Cheap enough (a reference kept): the peer asks for one sample after Caja's run.
            state.sample_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.headers}
            state.sample_body = b"".join(self.body)
            self.transport.write(OK)
            return
        self.transport.write(self.control())

    def control(self) -> bytes:
        state = self.state
        parsed = httptools.parse_url(self.url)
        path, query = parsed.path, parsed.query or b""
        body: Any
        if path == b"/_count":
            payload = str(len(state.times)).encode()
        elif path == b"/_records":
            since = int(query.partition(b"since=")[2] or 0)
            payload = b"".join(
                b"%.6f %s\n" % (t, i) for t, i in zip(state.times[since:], state.ids[since:], strict=True)
            )
        elif path == b"/_sample":
            body = {"headers": state.sample_headers, "body": base64.b64encode(state.sample_body).decode()}
            payload = json.dumps(body).encode()
        elif path == b"/_reset":
            state.times.clear()
            state.ids.clear()
            payload = b"0"
        else:
            return b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(payload), payload)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    state = State()
    server = await loop.create_server(lambda: Receiver(state), host, port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"receiver listening on http://{host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
