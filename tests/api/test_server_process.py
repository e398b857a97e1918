"""`caja serve` as an operator runs it: first start, restarts, keys, and a graceful SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import CAJA, free_port, wait_ready

KEY_LINE = re.compile(r"Sandbox test private key \(shown once\): (key_[A-Za-z0-9]+)")


def start(database_url: str, workdir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CAJA, "serve", "--port", str(port), "--database-url", database_url, *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "CAJA_LOG_LEVEL": "info"},
        )
    base_url = f"http://127.0.0.1:{port}"
    wait_ready(base_url, process, log)
    return process, base_url, log


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


def test_first_start_prints_a_working_key_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'first.db'}"
    process, base_url, log = start(url, tmp_path)
    try:
        match = KEY_LINE.search(log.read_text())
        assert match, log.read_text()
        key = match[1]
        answer = httpx.get(f"{base_url}/customers", auth=(key, ""))
        assert answer.status_code == 200 and answer.json()["object"] == "list"
    finally:
        assert stop(process) == 0
    again, base_url, log = start(url, tmp_path)
    try:
        assert not KEY_LINE.search(log.read_text())  # the key is stored hashed: never shown again
        assert httpx.get(f"{base_url}/customers", auth=(key, "")).status_code == 200
    finally:
        assert stop(again) == 0


def test_accounts_create_json_gives_working_test_and_live_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    done = subprocess.run(
        [*CAJA, "accounts", "create", "--name", "Tienda Uno", "--json"],
        env={**os.environ, "CAJA_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    account = json.loads(done.stdout)
    assert account["id"].startswith("acc_") and account["name"] == "Tienda Uno"
    assert account["test_private_key"] != account["live_private_key"]
    process, base_url, _ = start(url, tmp_path)
    try:
        for key, livemode in ((account["test_private_key"], False), (account["live_private_key"], True)):
            made = httpx.post(
                f"{base_url}/customers", auth=(key, ""), json={"name": "Ana", "email": "ana@example.com"}
            )
            assert made.status_code == 200, made.text
            assert made.json()["livemode"] is livemode
        # Keys are stored hashed: the database file never contains them.
        raw = (tmp_path / "accounts.db").read_bytes()
        assert account["test_private_key"].encode() not in raw
        assert account["live_private_key"].encode() not in raw
    finally:
        assert stop(process) == 0


def test_roll_key_revokes_the_old_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roll.db'}"
    env = {**os.environ, "CAJA_DATABASE_URL": url}
    account = json.loads(
        subprocess.run(
            [*CAJA, "accounts", "create", "--name", "R", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    new_key = subprocess.run(
        [*CAJA, "accounts", "roll-key", account["id"]], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert new_key.startswith("key_") and new_key != account["test_private_key"]
    process, base_url, _ = start(url, tmp_path)
    try:
        assert httpx.get(f"{base_url}/customers", auth=(account["test_private_key"], "")).status_code == 401
        assert httpx.get(f"{base_url}/customers", auth=(new_key, "")).status_code == 200
        assert httpx.get(f"{base_url}/customers", auth=(account["live_private_key"], "")).status_code == 200
    finally:
        assert stop(process) == 0


def test_bad_fixed_key_is_refused_before_serving(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *CAJA,
            "serve",
            "--port",
            str(free_port()),
            "--database-url",
            f"sqlite:///{tmp_path / 'k.db'}",
            "--api-key",
            "short",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "key_" in done.stderr


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_graceful_shutdown_finishes_in_flight_requests(tmp_path: Path, signal_name: str) -> None:
    url = f"sqlite:///{tmp_path / 'graceful.db'}"
    key = "key_graceful_shutdown_1"
    process, base_url, log = start(url, tmp_path, "--api-key", key)
    results: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=base_url, auth=(key, ""), timeout=10) as client:
            for i in range(400):
                try:
                    answer = client.post("/customers", json={"name": f"c{i}", "email": "c@example.com"})
                except httpx.TransportError:
                    return  # the server stopped accepting: expected once it shuts down
                results.append(answer.status_code)

    worker = threading.Thread(target=hammer)
    worker.start()
    time.sleep(0.5)
    process.send_signal(getattr(signal, signal_name))
    assert process.wait(timeout=20) == 0, log.read_text()
    worker.join(timeout=20)
    assert results and set(results) == {200}  # every request answered before the exit succeeded
    # Every answered create is in the database after the shutdown.
    import sqlite3

    with sqlite3.connect(tmp_path / "graceful.db") as raw:
        stored = raw.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert stored >= len(results)


def test_a_server_stopped_before_any_request_shuts_down_cleanly(tmp_path: Path) -> None:
    # The set-up (migrations, the sandbox account) runs on an event loop of its own before
    # uvicorn's: nothing it leaves behind may be awaited on the serving loop at shutdown.
    process, _base_url, log = start(f"sqlite:///{tmp_path / 'idle.db'}", tmp_path)
    assert stop(process) == 0, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text and "shutdown failed" not in text, text


def _get_on(conn: http.client.HTTPConnection) -> int:
    """One GET on the connection, its answer read to the end; the status."""
    conn.request("GET", "/health")
    answer = conn.getresponse()
    answer.read()
    return answer.status


def _closed_by_server(conn: http.client.HTTPConnection, within: float) -> bool:
    assert conn.sock is not None
    conn.sock.settimeout(within)
    try:
        return bool(conn.sock.recv(1) == b"")
    except TimeoutError:
        return False


def test_idle_connections_are_kept_open_past_uvicorns_five_seconds(tmp_path: Path) -> None:
    # A store keeps its connection across the pauses between sales: the default keeps it 75 s.
    process, base_url, _ = start(f"sqlite:///{tmp_path / 'keep.db'}", tmp_path)
    conn = http.client.HTTPConnection(base_url.removeprefix("http://"))
    try:
        assert _get_on(conn) == 200
        opened = conn.sock
        assert not _closed_by_server(conn, within=6.5)
        assert _get_on(conn) == 200
        assert conn.sock is opened  # the same connection, not a new one
    finally:
        conn.close()
        assert stop(process) == 0


def test_keep_alive_option_closes_idle_connections_when_it_says(tmp_path: Path) -> None:
    process, base_url, _ = start(f"sqlite:///{tmp_path / 'short.db'}", tmp_path, "--keep-alive", "1")
    conn = http.client.HTTPConnection(base_url.removeprefix("http://"))
    try:
        assert _get_on(conn) == 200
        # Well before uvicorn's own 5 s, let alone Caja's default 75 s.
        assert _closed_by_server(conn, within=3.0)
    finally:
        conn.close()
        assert stop(process) == 0
