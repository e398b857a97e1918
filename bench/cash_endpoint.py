"""The merchant's side of the cash benchmark: an approval endpoint and an SMTP sink, both tiny.

* ``--port P``: an HTTP/1.1 (keep-alive) server that answers every POST at once with
  ``200 {"payable":true,"min_amount":100,"max_amount":900000}`` — the merchant's synchronous
  webhook for ``inbound_payment.lookup`` and ``inbound_payment.payment_attempt`` (and, for the
  peer, the whole "gateway"). It counts the POSTs by the event type their body names.
* ``--smtp-port S`` (with ``--port P`` for its counter): an SMTP server that accepts every message
  and forgets it (so the sandbox's built-in mail catcher, which parses and stores each message
  in Caja's own database, does not count as Caja's work).

Control path of both: ``GET /_count`` answers JSON counts (``lookups``, ``attempts``, ``other``
POSTs; ``mails`` received by the sink). uvloop and httptools, no framework.

    python bench/cash_endpoint.py --port 19xxx
    python bench/cash_endpoint.py --port 19xxx --smtp-port 19yyy
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import httptools
import uvloop

ANSWER = b'{"payable":true,"min_amount":100,"max_amount":900000}'
OK = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(ANSWER)).encode()
    + b"\r\n\r\n"
    + ANSWER
)


class Counts:
    def __init__(self) -> None:
        self.lookups = 0
        self.attempts = 0
        self.other = 0
        self.mails = 0

    def as_json(self) -> bytes:
        return json.dumps(self.__dict__).encode()


class Http(asyncio.Protocol):
    """One keep-alive connection: every POST gets the payable answer, ``GET /_count`` the counts."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        if self.parser.get_method() == b"POST":
            body = b"".join(self.body)
            if b'"inbound_payment.payment_attempt"' in body:
                self.counts.attempts += 1
            elif b'"inbound_payment.lookup"' in body:
                self.counts.lookups += 1
            else:
                self.counts.other += 1
            self.transport.write(OK)
        elif self.url == b"/_count":
            payload = self.counts.as_json()
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(payload), payload))
        else:
            self.transport.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        if not self.parser.should_keep_alive():
            self.transport.close()


class Smtp(asyncio.Protocol):
    """Accepts every message (EHLO, MAIL, RCPT, DATA ... ".", QUIT) and keeps nothing but a count."""

    EHLO = b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n250 SIZE 33554432\r\n"

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        replies: list[bytes] = []
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    # Keep only what may begin the terminator.
                    self.buffer = self.buffer[-4:]
                    break
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                self.counts.mails += 1
                replies.append(b"250 2.0.0 accepted\r\n")
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                break
            self.buffer = rest
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                replies.append(self.EHLO if verb == b"EHLO" else b"250 sink\r\n")
            elif verb == b"DATA":
                self.in_data = True
                # The message may already follow: an empty line then is a terminator's start.
                self.buffer = b"\r\n" + self.buffer
                replies.append(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                replies.append(b"221 bye\r\n")
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
            else:  # MAIL, RCPT, RSET, NOOP
                replies.append(b"250 ok\r\n")
        if replies:
            self.transport.write(b"".join(replies))


async def serve(host: str, port: int, smtp_port: int | None) -> None:
    loop = asyncio.get_running_loop()
    counts = Counts()
    servers = [await loop.create_server(lambda: Http(counts), host, port, backlog=1024, reuse_address=True)]
    if smtp_port is not None:
        servers.append(
            await loop.create_server(lambda: Smtp(counts), host, smtp_port, backlog=1024, reuse_address=True)
        )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening on http://{host}:{port}" + (f" and smtp://{host}:{smtp_port}" if smtp_port else ""))
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--smtp-port", type=int)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.smtp_port))


if __name__ == "__main__":
    main()
