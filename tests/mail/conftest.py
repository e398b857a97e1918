"""Mail fixtures: waiting for caught e-mails, and separate ``caja serve`` processes with a database
and SMTP settings of their own."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.api.conftest import account, client_for, own  # noqa: F401 - shared fixtures
from tests.cash.conftest import receiver  # noqa: F401 - shared fixture
from tests.conftest import CAJA, Server, free_port, postgres_url, wait_ready
from tests.tools import pg_database


def wait_for_email(client: httpx.Client, search: str, *, count: int = 1, timeout: float = 20.0) -> list[Any]:
    """The caught e-mails matching ``search`` once there are ``count`` of them (newest first)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/_caja/emails", params={"search": search, "limit": "50"})
        assert response.status_code == 200, response.text
        found: list[Any] = response.json()["data"]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no e-mail matching {search!r} after {timeout} s (found {len(found)})")
        time.sleep(0.1)


T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: safe whatever loop the test's thread has."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextmanager
def fresh_database(backend: str, workdir: Path) -> Iterator[str]:
    """A database URL of its own: a new SQLite file, or a new PostgreSQL database dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'caja.db'}"
        return
    base = urlsplit(postgres_url())
    admin = urlunsplit(base._replace(path="/postgres"))
    name = f"caja_mail_{secrets.token_hex(4)}"
    run_async(pg_database._run("create", admin, name))
    try:
        yield urlunsplit(base._replace(path=f"/{name}"))
    finally:
        run_async(pg_database._run("drop", admin, name))


@contextmanager
def caja_server(backend: str, workdir: Path, env: dict[str, str], *extra: str) -> Iterator[Server]:
    """``caja serve`` on a database of its own with ``env`` added to its environment."""
    with fresh_database(backend, workdir) as database_url:
        port = free_port()
        mail_port = free_port()
        api_key = f"key_test{secrets.token_hex(12)}"
        log = workdir / "server.log"
        full_env = {**os.environ, "CAJA_LOG_LEVEL": "info", **env}
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    *CAJA,
                    "serve",
                    "--port",
                    str(port),
                    "--database-url",
                    database_url,
                    "--api-key",
                    api_key,
                    "--mail-catcher-port",
                    str(mail_port),
                    *extra,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=workdir,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base_url, process, log)
            yield Server(backend, base_url, database_url, api_key, log, mail_port)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``start_server(backend, env, *args)``: a separate server, stopped after the test."""
    stack: list[Any] = []

    def start(backend: str, env: dict[str, str], *extra: str) -> Server:
        workdir = tmp_path / f"server{len(stack)}"
        workdir.mkdir()
        manager = caja_server(backend, workdir, env, *extra)
        server = manager.__enter__()
        stack.append(manager)
        return server

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)
