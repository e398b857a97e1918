"""Caja's own HTTP/1.1 client for its POSTs to merchant endpoints, with a keep-alive pool.

Every synchronous approval call and every webhook delivery is one POST to a merchant. Through
aiohttp each cost ~150 µs of CPU (``delivery/http.post`` against a loopback endpoint answering
at once; ~245 µs when the calls come every few milliseconds), through this client, an asyncio
protocol with httptools' parser (llhttp, which uvicorn already uses), ~65 µs (~145 µs). A request
of ours is one shape (a POST with a body of known length, no redirects, proxies or cookies), so
most of what a general client does per request is work Caja never needs.

What it does: ``http`` and ``https`` (certificates verified, SNI), a pool of kept-alive
connections per (scheme, address, port, TLS name) that drops a connection the server closed or
that stayed idle past ``idle_seconds``, ``Content-Length`` bodies, chunked and close-delimited
responses, interim 1xx answers skipped, a cap on the body read (a longer body is cut and its
connection closed rather than drained), credentials in the URL sent as Basic authentication.
A request on a kept-alive connection that the server closes before answering at all is sent
once more on a new connection only if the old one had not been used for a second (a server
closing an idle connection); otherwise the failure is reported, never repeated blindly.
Time limits are the caller's (``asyncio.timeout``): a cancelled exchange closes its connection.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httptools

# A connection idle this long is closed rather than reused (servers commonly drop idle
# connections after 5 to 75 s; reusing one they are closing fails the request).
IDLE_SECONDS = 15.0
# A kept-alive connection unused for this long may have been closed by its server just as a
# request went out on it: such a request is sent once more on a new connection.
STALE_AFTER_SECONDS = 1.0
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")


class HttpError(Exception):
    """The exchange failed: no connection, a connection lost, or an answer that is not HTTP."""


class HttpDisconnected(HttpError):
    """The server closed the connection before its answer was complete."""


@dataclass(frozen=True, slots=True)
class Response:
    """An answer: its status, headers (names lower-case; repeated ones joined by ", ") and body."""

    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL's request goes and what its head says about it."""

    scheme: str
    host: str  # to connect to (an IP address or a name)
    port: int
    host_header: str
    path: str  # the request target: path and query
    authorization: str | None


@lru_cache(maxsize=1024)
def parse_url(url: str) -> Target:
    """A URL's target; ValueError for anything but an absolute http(s) URL with a host."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}")
    host = parts.hostname or ""
    if not host:
        raise ValueError("the URL has no host")
    default_port = 443 if scheme == "https" else 80
    port = parts.port or default_port
    ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
    shown = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    host_header = shown if port == default_port else f"{shown}:{port}"
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    return Target(scheme, ascii_host, port, host_header, path, authorization)


def request_head(target: Target, body_length: int, headers: Mapping[str, str]) -> bytes:
    """The request line and headers of a POST; a header that could split the head is refused."""
    lines = [f"POST {target.path} HTTP/1.1"]
    given = {name.lower() for name in headers}
    if "host" not in given:
        lines.append(f"Host: {target.host_header}")
    if target.authorization and "authorization" not in given:
        lines.append(f"Authorization: {target.authorization}")
    for name, value in headers.items():
        if any(c in name or c in value for c in _FORBIDDEN_IN_HEADERS) or ":" in name:
            raise ValueError(f"header {name!r} would not be a single header line")
        if name.lower() not in ("content-length", "transfer-encoding", "connection"):
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {body_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Connection(asyncio.Protocol):
    """One connection, one exchange at a time: feeds what arrives to llhttp, resolves the waiter."""

    def __init__(self, key: tuple[str, str, int, str | None]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used_at = time.monotonic()
        self.exchanges = 0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._read_limit = 0
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._head_done = False
        self._complete = False
        self._until_close = False

    # asyncio's side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # nothing was asked: a server talking out of turn is not reused
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"the answer is not valid HTTP: {exc}"))

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost finishes the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._head_done and self._until_close:
            self._finish(keep=False)  # a body delimited by the end of the connection
        elif exc is not None:
            self._fail(HttpDisconnected(f"{type(exc).__name__}: {exc}"))
        else:
            self._fail(HttpDisconnected("the server closed the connection before answering"))

    # llhttp's callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._headers = {}  # an interim answer (103 Early Hints…): the real one follows
            return
        self._status = status
        self._head_done = True
        self._until_close = "content-length" not in self._headers and "chunked" not in self._headers.get(
            "transfer-encoding", ""
        )

    def on_body(self, body: bytes) -> None:
        if not self._head_done:
            return
        self._body += body
        if len(self._body) > self._read_limit:
            # Enough: the rest is not read, so the connection cannot be reused.
            self._finish(keep=False, truncated=True)

    def on_message_complete(self) -> None:
        if self._head_done and not self._complete:
            self._finish(keep=self._parser.should_keep_alive())

    # the exchange
    def _finish(self, *, keep: bool, truncated: bool = False) -> None:
        self._complete = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        response = Response(self._status, self._headers, bytes(self._body[: self._read_limit]), truncated)
        if not keep:
            self.close()
        waiter.set_result(response)

    def _fail(self, error: HttpError) -> None:
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    async def exchange(self, head: bytes, body: bytes, read_limit: int) -> Response:
        assert self.transport is not None
        self._reset()
        self._read_limit = read_limit
        self._waiter = asyncio.get_running_loop().create_future()
        self.exchanges += 1
        self.transport.write(head + body)
        try:
            return await self._waiter
        except BaseException:
            self.close()  # cancelled or failed mid-exchange: its state is unknown
            raise
        finally:
            self._waiter = None
            self.used_at = time.monotonic()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@lru_cache(maxsize=1)
def default_tls_context() -> ssl.SSLContext:
    """The system's trusted certificates, loaded once (loading them costs milliseconds)."""
    return ssl.create_default_context()


class HttpClient:
    """POSTs over kept-alive connections: at most ``max_connections`` open at once."""

    def __init__(
        self,
        *,
        max_connections: int,
        tls: ssl.SSLContext | None = None,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_connections
        self._tls = tls
        self._idle_seconds = idle_seconds
        self._idle: dict[tuple[str, str, int, str | None], deque[_Connection]] = {}
        self._idle_count = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        read_limit: int,
        connect_to: str | None = None,
        server_hostname: str | None = None,
    ) -> Response:
        """POST ``body`` to ``url``; ``connect_to`` an address to use instead of the URL's host.

        ``server_hostname`` is the name TLS checks the certificate against (the URL's host by
        default). Raises ``HttpError`` (or ``OSError`` from connecting, ``ValueError`` for a URL
        or header Caja cannot send).
        """
        if self._closed:
            raise HttpError("the client is closed")
        target = parse_url(url)
        head = request_head(target, len(body), headers)
        tls_name = (server_hostname or target.host) if target.scheme == "https" else None
        key = (target.scheme, connect_to or target.host, target.port, tls_name)
        async with self._slots:
            connection = self._reusable(key)
            if connection is not None:
                idle_for = time.monotonic() - connection.used_at
                try:
                    response = await connection.exchange(head, body, read_limit)
                except HttpDisconnected:
                    if idle_for < STALE_AFTER_SECONDS:
                        raise
                    # The server closed an idle connection as the request went out: once more.
                else:
                    self._keep(connection)
                    return response
            connection = await self._connect(key)
            response = await connection.exchange(head, body, read_limit)
            self._keep(connection)
            return response

    def _reusable(self, key: tuple[str, str, int, str | None]) -> _Connection | None:
        pool = self._idle.get(key)
        now = time.monotonic()
        while pool:
            connection = pool.pop()
            self._idle_count -= 1
            if not connection.closed and now - connection.used_at < self._idle_seconds:
                return connection
            connection.close()
        return None

    def _keep(self, connection: _Connection) -> None:
        if connection.closed:
            return
        if self._closed:
            connection.close()  # its exchange outlived the client
            return
        if self._idle_count >= self._max_idle:
            self._evict_one()
        self._idle.setdefault(connection.key, deque()).append(connection)
        self._idle_count += 1

    def _evict_one(self) -> None:
        oldest: deque[_Connection] | None = None
        for pool in self._idle.values():
            if pool and (oldest is None or pool[0].used_at < oldest[0].used_at):
                oldest = pool
        if oldest:
            oldest.popleft().close()
            self._idle_count -= 1

    async def _connect(self, key: tuple[str, str, int, str | None]) -> _Connection:
        scheme, host, port, tls_name = key
        loop = asyncio.get_running_loop()
        tls: Any = None
        if scheme == "https":
            tls = self._tls or default_tls_context()
        _transport, connection = await loop.create_connection(
            lambda: _Connection(key), host, port, ssl=tls, server_hostname=tls_name
        )
        return connection

    async def close(self) -> None:
        """Close every idle connection; exchanges in flight keep theirs until they end."""
        self._closed = True
        for pool in self._idle.values():
            while pool:
                pool.pop().close()
        self._idle.clear()
        self._idle_count = 0
