"""Shared fixtures: real Caja servers (``caja serve`` subprocesses) on SQLite and on PostgreSQL.

Every test that takes ``server`` runs twice, once per backend. PostgreSQL comes from
``CAJA_TEST_POSTGRES_URL`` (``scripts/test`` creates a fresh database and sets it); when that is
unset the PostgreSQL half fails loudly rather than being skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

BACKENDS = ("sqlite", "postgresql")
CAJA = [sys.executable, "-m", "caja"]


@dataclass(frozen=True)
class Server:
    backend: str
    base_url: str
    database_url: str
    api_key: str
    # The server's combined stdout and stderr, for tests that inspect what it logs.
    log_path: Path
    # Its built-in SMTP mail catcher (a free port per server, so concurrent runs never share one).
    mail_port: int = 0
    # The operator's token for GET /metrics (CAJA_ADMIN_TOKEN), when the server has one.
    admin_token: str | None = None

    def cli(self, *args: str) -> str:
        env = {**os.environ, "CAJA_DATABASE_URL": self.database_url}
        done = subprocess.run(
            [*CAJA, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"caja {' '.join(args)} failed: {done.stderr}")
        return done.stdout


@dataclass(frozen=True)
class AccountKeys:
    id: str
    test_key: str
    live_key: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_url() -> str:
    url = os.environ.get("CAJA_TEST_POSTGRES_URL")
    if not url:
        raise RuntimeError(
            "CAJA_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which creates a fresh "
            "PostgreSQL database, or point it at an empty database yourself"
        )
    return url


def wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"caja serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"caja serve did not become ready in {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    backend: str = request.param
    workdir = tmp_path_factory.mktemp(f"caja-{backend}")
    database_url = f"sqlite:///{workdir / 'caja.db'}" if backend == "sqlite" else postgres_url()
    port = free_port()
    mail_port = free_port()
    api_key = f"key_test{secrets.token_hex(12)}"
    admin_token = secrets.token_urlsafe(24)
    log = workdir / "server.log"
    env = {**os.environ, "CAJA_LOG_LEVEL": "warning", "CAJA_ADMIN_TOKEN": admin_token}
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
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process, log)
        yield Server(
            backend=backend,
            base_url=base_url,
            database_url=database_url,
            api_key=api_key,
            log_path=log,
            mail_port=mail_port,
            admin_token=admin_token,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def new_account(server: Server) -> Callable[[str], AccountKeys]:
    """Creates a separate merchant account through ``caja accounts create --json``."""

    def create(name: str = "Otro Comercio") -> AccountKeys:
        data = json.loads(server.cli("accounts", "create", "--name", name, "--json"))
        return AccountKeys(
            id=data["id"], test_key=data["test_private_key"], live_key=data["live_private_key"]
        )

    return create


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    """A plain HTTP client, authenticated with the sandbox test key, for what the SDK cannot send."""
    headers = {
        "Authorization": f"Bearer {server.api_key}",
        "Accept": "application/vnd.conekta-v2.3.0+json",
    }
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10.0) as client:
        yield client
