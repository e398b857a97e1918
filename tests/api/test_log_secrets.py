"""No private API key ever reaches the server's log, whatever a client sends."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import CAJA, Server, free_port, wait_ready

KEY_LIKE = re.compile(r"key_[A-Za-z0-9]{6,}")


def drive(base_url: str, sandbox_key: str, wrong_key: str) -> None:
    """Requests that carry keys in every place a client might put one, succeeding and failing."""
    with httpx.Client(base_url=base_url, timeout=15.0) as client:
        good = {"Authorization": f"Bearer {sandbox_key}"}
        assert client.get("/customers?limit=1", headers=good).status_code == 200
        created = client.post("/customers", headers=good, json={"name": "Log", "email": "log@example.com"})
        assert created.status_code == 200
        assert client.get("/customers?limit=1", auth=(sandbox_key, "")).status_code == 200

        failing = [
            client.get("/customers", headers={"Authorization": f"Bearer {wrong_key}"}),
            client.get("/customers", auth=(wrong_key, "")),
            client.get("/customers", headers={"Authorization": wrong_key}),
            client.get(
                "/customers",
                headers={"Authorization": "Basic " + base64.b64encode(f"{wrong_key}:x".encode()).decode()},
            ),
            client.post("/customers", headers={"Authorization": f"Bearer {wrong_key}"}, content=b"{bad json"),
            client.get(f"/customers/{wrong_key}", headers=good),
            client.get(f"/customers?search={wrong_key}&next={wrong_key}", headers=good),
            client.get(f"/{wrong_key}", headers=good),
            client.get("/customers", headers={**good, "Accept": f"application/vnd.conekta-{wrong_key}"}),
            client.post("/customers", headers=good, content=f'{{"name": "{wrong_key}"'.encode()),
            client.put(f"/customers/{created.json()['id']}", headers=good, json={sandbox_key: wrong_key}),
        ]
        assert all(400 <= r.status_code < 500 for r in failing), [r.status_code for r in failing]


def assert_no_secret(log: str, *keys: str) -> None:
    for key in keys:
        assert key not in log
        # Nor a recognisable part of one (a prefix long enough to narrow a brute force).
        assert key[: len("key_") + 12] not in log
        # Nor the HTTP Basic credentials that carry it.
        for password in ("", "x"):
            assert base64.b64encode(f"{key}:{password}".encode()).decode() not in log


def test_the_session_server_log_holds_no_key(server: Server) -> None:
    wrong_key = "key_" + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")
    drive(server.base_url, server.api_key, wrong_key)
    log = server.log_path.read_text(errors="replace")
    assert_no_secret(log, server.api_key, wrong_key)


@pytest.fixture
def verbose_server(server: Server, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """A second ``caja serve`` on the same database, logging everything (debug level)."""
    port = free_port()
    log = tmp_path / "verbose.log"
    env = {**os.environ, "CAJA_LOG_LEVEL": "debug", "PYTHONUNBUFFERED": "1"}
    env["CAJA_ADMIN_TOKEN"] = server.admin_token or ""
    command = [*CAJA, "serve", "--port", str(port), "--database-url", server.database_url]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--api-key", server.api_key, "--log-level", "debug"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process, log)
        yield base_url, log, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_debug_level_log_holds_no_key(
    server: Server, verbose_server: tuple[str, Path, subprocess.Popen[bytes]]
) -> None:
    base_url, log_path, process = verbose_server
    wrong_key = "key_" + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")
    drive(base_url, server.api_key, wrong_key)
    # The operator's token, right and wrong, on the metrics route.
    token = server.admin_token or ""
    wrong_token = secrets.token_urlsafe(24)
    for sent, status in ((token, 200), (wrong_token, 401)):
        answer = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {sent}"}, timeout=15)
        assert answer.status_code == status
    process.terminate()
    process.wait(timeout=15)
    log = log_path.read_text(errors="replace")
    # This is the whole log of that process, start-up banner to shutdown.
    assert f"Caja {base_url}" in log
    assert "Sandbox account acc_" in log
    assert "Application shutdown complete" in log
    assert_no_secret(log, server.api_key, wrong_key, token, wrong_token)
    # Nothing shaped like a private key at all.
    assert KEY_LIKE.findall(log) == []
