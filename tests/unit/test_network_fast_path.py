"""The network API's fast path: it serves exactly its two calls, and answers like the routes do."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from caja.admission import Gate
from caja.api import network
from caja.api.network_fast import NetworkFastPath
from caja.domain.errors import AuthenticationError, ErrorDetail

LIMIT = 64


class Networks:
    """Stands in for the network authenticator: refuses every call, and counts them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str, str, bytes]] = []

    async def authenticate(
        self,
        network_id: str | None,
        _stamp: str | None,
        _sig: str | None,
        method: str,
        path: str,
        body: bytes,
    ) -> Any:
        self.calls.append((network_id, method, path, body))
        raise AuthenticationError([ErrorDetail("conekta.errors.authentication.x", "no", "no", "refused")])


class Container:
    def __init__(self) -> None:
        self.networks = Networks()
        self.store_calls = Gate(2)


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"t"), *(headers or [])],
        "server": ("t", 80),
        "client": ("c", 1),
    }


def body_of(chunks: list[bytes]) -> Callable[[], Awaitable[dict[str, Any]]]:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


async def call(
    path: str, chunks: list[bytes], method: str = "POST", **headers: str
) -> tuple[list, Container, Any]:
    container = Container()
    passed_on: list[str] = []

    async def app(scope: Any, _receive: Any, _send: Any) -> None:
        passed_on.append(scope["path"])

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    fast = NetworkFastPath(app, container, LIMIT)  # type: ignore[arg-type]
    await fast(scope(method, path, raw), body_of(chunks), send)
    return sent, container, passed_on


@pytest.mark.parametrize("path", sorted(network.FAST_CALLS))
async def test_the_two_calls_are_answered_here_with_the_exact_bytes_and_headers(path: str) -> None:
    sent, container, passed_on = await call(
        path, [b'{"reference":', b' "1"}'], x_caja_network="net_1", accept_language="en"
    )
    assert passed_on == []
    # The authenticator saw the network, the method, the path and the body as sent, in one piece.
    assert container.networks.calls == [("net_1", "POST", path, b'{"reference": "1"}')]
    start, body = sent
    assert start["status"] == 401
    error = json.loads(body["body"])
    assert error["object"] == "error" and error["type"] == "authentication_error"
    assert error["details"][0]["message"] == "no" and error["log_id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/network/v1/payments"), ("POST", "/network/v1/reversals"), ("POST", "/network/v1/payments/")],
)
async def test_anything_else_goes_on_to_the_application(method: str, path: str) -> None:
    sent, container, passed_on = await call(path, [b"{}"], method=method)
    assert passed_on == [path] and sent == [] and container.networks.calls == []


async def test_a_chunked_body_past_the_limit_is_refused_unread() -> None:
    sent, container, _ = await call("/network/v1/payments", [b"x" * 40, b"y" * 40])
    assert container.networks.calls == []
    start, body = sent
    assert start["status"] == 413
    assert json.loads(body["body"])["details"][0]["code"] == "conekta.errors.request.payload_too_large"


async def test_a_client_gone_before_its_body_gets_no_answer_and_no_error_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        sent, container, _ = await call("/network/v1/lookups", [])
    assert sent == [] and container.networks.calls == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_unexpected_failure_is_a_conekta_500() -> None:
    class Broken(Container):
        def __init__(self) -> None:
            self.networks = None  # type: ignore[assignment]

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(*_: Any) -> None:
        raise AssertionError("not for the application")

    fast = NetworkFastPath(app, Broken(), LIMIT)  # type: ignore[arg-type]
    await fast(scope("POST", "/network/v1/lookups"), body_of([b"{}"]), send)
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"])["type"] == "api_error"
