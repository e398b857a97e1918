"""A client that hangs up mid-body is not a server error: no 500, no error-level log line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from caja import bootstrap
from caja.app import create_app
from caja.config import Settings
from caja.services import accounts
from caja.store import migrate

KEY = "key_client_disconnect_1"


async def test_a_disconnect_while_reading_the_body_is_answered_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    container = bootstrap.build(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}"))
    await migrate.upgrade(container.database)
    await accounts.ensure_sandbox(container.uow, container.clock, KEY)
    app = create_app(container)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/customers",
        "raw_path": b"/customers",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"t"), (b"authorization", f"Bearer {KEY}".encode())],
        "server": ("t", 80),
        "client": ("c", 1),
        "state": {},
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    with caplog.at_level(logging.ERROR):
        await app(scope, receive, send)
    await container.close()
    assert statuses and statuses[0] != 500
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
