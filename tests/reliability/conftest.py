"""Reliability tests: real ``caja`` processes on a database of their own, killed and restarted at will."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import CAJA, free_port, postgres_url, wait_ready
from tests.tools.databases import pg_admin, pg_admin_url, sibling_url


@dataclass
class Deployment:
    """One database and the Caja processes started on it (all stopped at the end of the test)."""

    backend: str
    database_url: str
    workdir: Path
    env: dict[str, str]
    api_key: str = field(default_factory=lambda: f"key_test{secrets.token_hex(12)}")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    base_url: str = ""

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = self.workdir / log_name
        with log.open("ab") as out:
            process = subprocess.Popen(
                [*CAJA, *args], stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir
            )
        self.processes.append(process)
        return process

    def serve(self, *extra: str) -> subprocess.Popen[bytes]:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        args = ["serve", "--port", str(port), "--database-url", self.database_url, "--api-key", self.api_key]
        args += ["--no-mail-catcher", *extra]
        process = self._spawn(args, "serve.log")
        wait_ready(self.base_url, process, self.workdir / "serve.log", timeout=60)
        return process

    def worker(self, *extra: str) -> subprocess.Popen[bytes]:
        return self._spawn(["worker", "--database-url", self.database_url, *extra], "workers.log")

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/vnd.conekta-v2.3.0+json"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self, name: str) -> str:
        path = self.workdir / name
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    yield from _deployment(request.param, tmp_path)


@pytest.fixture
def pg_deployment(tmp_path: Path) -> Iterator[Deployment]:
    yield from _deployment("postgresql", tmp_path)


def _deployment(backend: str, tmp_path: Path) -> Iterator[Deployment]:
    env = {
        **os.environ,
        "CAJA_LOG_LEVEL": "warning",
        "CAJA_SECRET": secrets.token_hex(32),
        "CAJA_JOB_LEASE": "2",
        "CAJA_WEBHOOK_RETRY_SCHEDULE": "0,0.2,0.5,1,1,1,1,1,1,1",
        "CAJA_WEBHOOK_RETRY_JITTER": "0",
        "CAJA_DISPATCHER_POLL_INTERVAL": "0.1",
    }
    dropped: str | None = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'caja.db'}"
    else:
        admin, base = pg_admin_url(postgres_url())
        name = f"{base}_{secrets.token_hex(4)}"[:60]
        pg_admin("create", admin, name)
        url = sibling_url(postgres_url(), name)
        dropped = name
    deployment = Deployment(backend, url, tmp_path, env)
    try:
        yield deployment
    finally:
        deployment.stop_all()
        if dropped is not None:
            admin, _ = pg_admin_url(postgres_url())
            pg_admin("drop", admin, dropped)


def wait_until(predicate: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(0.05)
