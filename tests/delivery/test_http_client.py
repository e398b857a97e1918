"""Caja's own HTTP client against a scripted server on loopback.

The server counts connections and records every request as it arrived on the wire, so the tests
can see what a general client's tests take on trust: that a kept-alive connection is reused,
that a connection which cannot be reused is not, and that a request is never sent twice unless
its connection had gone stale.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from caja.delivery import http, http_client
from caja.delivery.http_client import HttpClient, HttpDisconnected, HttpError, parse_url, request_head
from tests.tools.smtp import self_signed

JSON = b'{"payable": true}'


def answer(body: bytes = JSON, *, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


# What the server does with a request: bytes to write, None to close without answering, or a
# coroutine function given the transport (to write slowly, forever, …).
Respond = Callable[["Request"], "bytes | Callable[[asyncio.Transport], object] | None"]


@dataclass(frozen=True)
class Request:
    connection: int  # 1 for the first connection the server accepted
    nth: int  # 1 for the first request on its connection
    head: bytes
    body: bytes

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.decode().lower() == name.lower():
                return value.decode().strip()
        return None


@dataclass
class Server:
    respond: Respond
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    port: int = 0
    transports: list[asyncio.Transport] = field(default_factory=list)
    tasks: set[asyncio.Future[object]] = field(default_factory=set)

    def url(self, path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


class _Session(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = b""
        self.nth = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.server.connections += 1
        self.number = self.server.connections
        self.server.open_now += 1
        self.server.most_open = max(self.server.most_open, self.server.open_now)
        self.server.transports.append(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.open_now -= 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            self.nth += 1
            request = Request(self.number, self.nth, head, rest[:length])
            self.server.requests.append(request)
            reply = self.server.respond(request)
            if reply is None:
                self.transport.close()
                return
            if callable(reply):
                task = asyncio.ensure_future(reply(self.transport))  # type: ignore[arg-type]
                self.server.tasks.add(task)
                task.add_done_callback(self.server.tasks.discard)
                return
            self.transport.write(reply)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(respond: Respond, tls: ssl.SSLContext | None = None) -> Server:
        server = Server(respond)
        listening = await asyncio.get_running_loop().create_server(
            lambda: _Session(server), "127.0.0.1", 0, ssl=tls
        )
        servers.append(listening)
        server.port = listening.sockets[0].getsockname()[1]
        return server

    yield start  # type: ignore[misc]
    for listening in servers:
        listening.close()


async def test_a_kept_alive_connection_carries_the_next_request(serve) -> None:
    server = await serve(lambda r: answer(b'{"n": %d}' % r.nth))
    client = HttpClient(max_connections=4)
    first = await client.post(server.url("/a?x=1"), b'{"a": 1}', {"X-Caja": "uno"}, read_limit=1024)
    second = await client.post(server.url("/b"), b"{}", {}, read_limit=1024)
    await client.close()

    assert (first.status, first.body, second.body) == (200, b'{"n": 1}', b'{"n": 2}')
    assert first.headers["content-type"] == "application/json"
    assert server.connections == 1
    request = server.requests[0]
    assert request.head.split(b"\r\n")[0] == b"POST /a?x=1 HTTP/1.1"
    assert request.header("Host") == f"127.0.0.1:{server.port}"
    assert request.header("Content-Length") == "8" and request.body == b'{"a": 1}'
    assert request.header("X-Caja") == "uno"


async def test_a_chunked_answer_is_put_together_and_repeated_headers_joined(serve) -> None:
    chunked = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nSet-Thing: a\r\nSet-Thing: b\r\n\r\n"
        b"5\r\nhola \r\n5\r\nmundo\r\n0\r\n\r\n"
    )
    server = await serve(lambda r: chunked)
    client = HttpClient(max_connections=1)
    response = await client.post(server.url(), b"{}", {}, read_limit=1024)
    again = await client.post(server.url(), b"{}", {}, read_limit=1024)
    await client.close()

    assert (response.status, response.body, response.truncated) == (201, b"hola mundo", False)
    assert response.headers["set-thing"] == "a, b"
    assert again.body == b"hola mundo" and server.connections == 1


async def test_a_body_ended_by_closing_the_connection_is_whole_and_the_connection_not_reused(serve) -> None:
    server = await serve(lambda r: _then_close(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhasta el final"))
    client = HttpClient(max_connections=2)
    first = await client.post(server.url(), b"{}", {}, read_limit=1024)
    second = await client.post(server.url(), b"{}", {}, read_limit=1024)
    await client.close()

    assert (first.status, first.body) == (200, b"hasta el final")
    assert second.body == b"hasta el final"
    assert server.connections == 2


def _answer_after(seconds: float) -> Callable[[asyncio.Transport], object]:
    async def write(transport: asyncio.Transport) -> None:
        await asyncio.sleep(seconds)
        transport.write(answer())

    return write


def _then_close(data: bytes) -> Callable[[asyncio.Transport], object]:
    async def write(transport: asyncio.Transport) -> None:
        transport.write(data)
        transport.close()

    return write


async def test_a_body_past_the_read_limit_is_cut_and_its_connection_closed(serve) -> None:
    async def endless(transport: asyncio.Transport) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while not transport.is_closing():
            transport.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
            await asyncio.sleep(0.001)

    server = await serve(lambda r: endless if r.connection == 1 else answer())
    client = HttpClient(max_connections=2)
    async with asyncio.timeout(5):
        cut = await client.post(server.url(), b"{}", {}, read_limit=3000)
        after = await client.post(server.url(), b"{}", {}, read_limit=3000)
    await client.close()

    assert (cut.status, len(cut.body), cut.truncated) == (200, 3000, True)
    assert after.body == JSON and server.connections == 2


async def test_an_interim_answer_is_skipped(serve) -> None:
    server = await serve(lambda r: b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + answer())
    client = HttpClient(max_connections=1)
    response = await client.post(server.url(), b"{}", {}, read_limit=1024)
    await client.close()
    assert (response.status, response.body) == (200, JSON)
    assert "link" not in response.headers


async def test_a_connection_the_server_closed_while_idle_is_not_reused(serve) -> None:
    server = await serve(lambda r: answer())
    client = HttpClient(max_connections=1)
    await client.post(server.url(), b"{}", {}, read_limit=1024)
    server.transports[0].close()  # the server drops the idle connection
    await asyncio.sleep(0.05)
    response = await client.post(server.url(), b"{}", {}, read_limit=1024)
    await client.close()
    assert response.status == 200
    assert server.connections == 2 and len(server.requests) == 2


async def test_a_request_lost_on_a_busy_connection_is_reported_not_sent_again(serve) -> None:
    server = await serve(lambda r: answer() if r.nth == 1 else None)
    client = HttpClient(max_connections=1)
    await client.post(server.url(), b"{}", {}, read_limit=1024)
    with pytest.raises(HttpDisconnected):
        await client.post(server.url(), b'{"second": true}', {}, read_limit=1024)
    await client.close()
    assert [r.body for r in server.requests].count(b'{"second": true}') == 1


async def test_a_request_lost_on_a_stale_connection_goes_once_more_on_a_new_one(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server closes a kept-alive connection just as the next request arrives on it, the race
    # an idle-timeout on the server's side makes: the request is sent again, on a new connection.
    monkeypatch.setattr(http_client, "STALE_AFTER_SECONDS", 0.05)
    server = await serve(lambda r: answer() if r.nth == 1 else None)
    client = HttpClient(max_connections=1)
    await client.post(server.url(), b"{}", {}, read_limit=1024)
    await asyncio.sleep(0.1)
    response = await client.post(server.url(), b'{"second": true}', {}, read_limit=1024)
    await client.close()
    assert response.status == 200
    assert [(r.connection, r.nth) for r in server.requests] == [(1, 1), (1, 2), (2, 1)]


async def test_an_answer_that_is_not_http_fails_the_exchange(serve) -> None:
    server = await serve(lambda r: b"SMTP 220 hola\r\n\r\n")
    client = HttpClient(max_connections=1)
    with pytest.raises(HttpError):
        await client.post(server.url(), b"{}", {}, read_limit=1024)
    await client.close()


async def test_at_most_max_connections_are_open_at_once(serve) -> None:
    server = await serve(lambda r: _answer_after(0.02))
    client = HttpClient(max_connections=2)
    responses = await asyncio.gather(*(client.post(server.url(), b"{}", {}, read_limit=64) for _ in range(8)))
    await client.close()
    assert [r.status for r in responses] == [200] * 8
    assert server.most_open <= 2 and server.connections == 2


async def test_a_cancelled_exchange_closes_its_connection(serve) -> None:
    async def never(transport: asyncio.Transport) -> None:
        return None

    server = await serve(lambda r: never if r.connection == 1 else answer())
    client = HttpClient(max_connections=1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await client.post(server.url(), b"{}", {}, read_limit=64)
    response = await client.post(server.url(), b"{}", {}, read_limit=64)
    await client.close()
    assert response.status == 200 and server.connections == 2


async def test_a_header_that_would_split_the_head_is_refused_before_sending(serve) -> None:
    server = await serve(lambda r: answer())
    client = HttpClient(max_connections=1)
    for headers in ({"X-Evil": "a\r\nX-Injected: 1"}, {"X-Evil\n": "a"}, {"X:Evil": "a"}):
        with pytest.raises(ValueError):
            await client.post(server.url(), b"{}", headers, read_limit=64)
    await client.close()
    assert server.requests == [] and server.connections == 0


def test_a_url_becomes_its_request_target_host_and_credentials() -> None:
    target = parse_url("https://usuario:clave%21@bücher.example:8443/ruta ñ?x=1&y=á")
    assert (target.scheme, target.host, target.port) == ("https", "xn--bcher-kva.example", 8443)
    assert target.host_header == "xn--bcher-kva.example:8443"
    assert target.path == "/ruta%20%C3%B1?x=1&y=%C3%A1"
    assert target.authorization == "Basic " + base64.b64encode(b"usuario:clave!").decode()
    plain = parse_url("http://[::1]/")
    assert (plain.host, plain.port, plain.host_header, plain.path) == ("::1", 80, "[::1]", "/")
    head = request_head(plain, 2, {"Host": "otro.example", "Content-Length": "99"})
    assert head == b"POST / HTTP/1.1\r\nHost: otro.example\r\nContent-Length: 2\r\n\r\n"
    with pytest.raises(ValueError):
        parse_url("ftp://example.com/")


async def test_https_with_a_trusted_certificate_and_not_without(serve, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server = await serve(lambda r: answer(), tls=server_tls)
    trusting = HttpClient(max_connections=1, tls=ssl.create_default_context(cafile=str(cert)))
    response = await trusting.post(server.url(scheme="https"), b"{}", {}, read_limit=64)
    again = await trusting.post(server.url(scheme="https"), b"{}", {}, read_limit=64)
    await trusting.close()
    assert (response.status, again.status, server.connections) == (200, 200, 1)

    # The system's trust store does not know the test certificate: http.post reports why.
    exchange = await http.post(
        http.new_client(max_connections=1), server.url(scheme="https"), b"{}", {}, timeout=5, started_at_ms=0
    )
    assert exchange.status is None and exchange.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in exchange.error
    assert len(server.requests) == 2


async def test_a_connection_whose_exchange_outlives_the_client_is_closed_not_kept(serve) -> None:
    server = await serve(lambda r: _answer_after(0.05))
    client = HttpClient(max_connections=1)
    pending = asyncio.ensure_future(client.post(server.url(), b"{}", {}, read_limit=64))
    await asyncio.sleep(0.01)
    await client.close()
    assert (await pending).status == 200
    await asyncio.sleep(0.05)
    assert server.open_now == 0
