"""A synchronous webhook on loopback that approves every call: ``caja trigger``'s stand-in merchant.

A recurrent-cash payment goes through only when the merchant's synchronous webhook says so, so
``caja trigger charge.paid`` in an account that has none brings this one for the moment it pays:
an HTTP/1.1 server on 127.0.0.1 that answers every ``POST`` with ``{"payable": true}`` (the
network's whole range) and keeps the event types it was asked, so the trigger can say what the
payment went through. It checks no signature: it approves test payments of the developer's own
account, and is registered only for the few seconds the trigger runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import TracebackType

REPLY = b'{"payable": true}'
# A request head larger than this is not an approval call: the connection is dropped.
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


class LoopbackApprover:
    """``async with LoopbackApprover() as approver:`` serves ``approver.url`` until the block ends."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self._server: asyncio.Server | None = None
        self._port = 0
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/caja-trigger/approve"

    async def __aenter__(self) -> LoopbackApprover:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            # Kept-alive connections would hold wait_closed() open until Caja dropped them.
            for writer in self._connections:
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while await self._answer_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # a caller that went away or sent something else: nothing to answer
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and approve it; False once the caller has closed the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            return False
        if len(head) > MAX_HEAD_BYTES:
            raise ValueError("request head too large")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        length = int(headers.get("content-length", "0"))
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ValueError("body too large")
        body = await reader.readexactly(length)
        self.asked.append(_event_type(body))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY
        )
        await writer.drain()
        return True


def _event_type(body: bytes) -> str:
    try:
        envelope = json.loads(body)
    except ValueError:
        return "?"
    kind = envelope.get("type") if isinstance(envelope, dict) else None
    return kind if isinstance(kind, str) else "?"
