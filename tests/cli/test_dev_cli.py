"""``caja listen`` and ``caja trigger`` as a developer runs them: real processes against a real
server, forwarding to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO

import httpx
import pytest

from tests.conftest import CAJA, AccountKeys, Server
from tests.tools.receiver import Receiver, Reply, always

SUPPORTED = [
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "payment_source.created",
    "payment_source.updated",
    "payment_source.deleted",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook_key.created",
    "webhook_key.deleted",
    "webhook_ping",
    "order.created",
    "charge.created",
    "charge.paid",
    "order.paid",
    "charge.reversed",
    "order.reversed",
]
# The payment events, with the state their object is in: a snapshot taken when each happened.
PAYMENT_EVENTS = {
    "order.created": "pending_payment",
    "charge.created": "pending_payment",
    "charge.paid": "paid",
    "order.paid": "paid",
    "charge.reversed": "reversed",
    "order.reversed": "reversed",
}
TRIGGERED = re.compile(r"^Triggered (?P<type>\S+): event (?P<event>[0-9a-f]{24}) \((?P<subject>\S+)\)$")


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CAJA_API_KEY", "CAJA_SERVER_URL"}}
    return {**env, "PYTHONUNBUFFERED": "1"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CAJA, *args], capture_output=True, text=True, timeout=60, check=False, env=cli_env()
    )


def trigger(server: Server, key: str, event_type: str, *extra: str) -> list[re.Match[str]]:
    done = run_cli("trigger", event_type, "--api-key", key, "--server", server.base_url, *extra)
    assert done.returncode == 0, done.stderr
    matches = [TRIGGERED.match(line) for line in done.stdout.splitlines()]
    assert matches and all(matches), done.stdout
    return [m for m in matches if m is not None]


class Lines:
    """The lines a process prints, collected by a thread as they come."""

    def __init__(self, stream: IO[str]) -> None:
        self.all: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        for line in self.all:
            if predicate(line):
                return line
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching line after {timeout} s; got {self.all}")
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            self.all.append(line)
            if predicate(line):
                return line

    def rest(self, timeout: float = 5.0) -> list[str]:
        """Every line, once the process has closed its output."""
        self._thread.join(timeout)
        while not self._queue.empty():
            self.all.append(self._queue.get_nowait())
        return self.all


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def account(new_account: Callable[[str], AccountKeys]) -> AccountKeys:
    return new_account("Comercio CLI")


@pytest.fixture(scope="module")
def shared_account(server: Server) -> AccountKeys:
    """One account for the trigger tests (each makes objects of its own, and reads back its events)."""
    data = json.loads(server.cli("accounts", "create", "--name", "Comercio trigger", "--json"))
    return AccountKeys(id=data["id"], test_key=data["test_private_key"], live_key=data["live_private_key"])


def start_listen(server: Server, key: str, url: str, *extra: str) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen(
        [*CAJA, "listen", "--forward-to", url, "--api-key", key, "--server", server.base_url, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
    )
    assert process.stdout is not None
    return process, Lines(process.stdout)


def stop(process: subprocess.Popen[str], signum: int) -> int:
    process.send_signal(signum)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_listen_forwards_a_triggered_event_and_cleans_up(
    server: Server, account: AccountKeys, receiver: Receiver
) -> None:
    process, lines = start_listen(
        server, account.test_key, receiver.url("/hook"), "--events", "customer.created"
    )
    try:
        ready = lines.wait_for(lambda line: line.startswith("Ready."))
        webhook_id = re.search(r"webhook ([0-9a-f]{24})", ready)
        assert webhook_id is not None, ready
        assert "whsec_" in ready
        # The new webhook's ping is the first delivery.
        lines.wait_for(lambda line: "webhook_ping" in line and "--> 200 OK" in line)

        [fired] = trigger(server, account.test_key, "customer.created")
        event_id = fired["event"]
        line = lines.wait_for(lambda line: event_id in line)
        assert "customer.created" in line and "--> 200 OK" in line
        assert receiver.url("/hook") in line
        delivered = [json.loads(r.body) for r in receiver.to("/hook")]
        assert event_id in [body["id"] for body in delivered]
        [request] = [r for r in receiver.to("/hook") if json.loads(r.body)["id"] == event_id]
        assert request.headers["webhook-id"] == event_id and "digest" in request.headers
    finally:
        code = stop(process, signal.SIGINT)
    assert code == 0, lines.rest()
    assert any(f"Webhook {webhook_id[1]} deleted." in line for line in lines.rest())
    gone = httpx.get(
        f"{server.base_url}/webhooks/{webhook_id[1]}",
        headers={"Authorization": f"Bearer {account.test_key}"},
    )
    assert gone.status_code == 404


def test_listen_prints_failed_deliveries_and_stops_on_sigterm(
    server: Server, account: AccountKeys, receiver: Receiver
) -> None:
    receiver.on("/down", always(Reply(status=503, body=b"busy")))
    process, lines = start_listen(server, account.test_key, receiver.url("/down"))
    try:
        lines.wait_for(lambda line: line.startswith("Ready."))
        [fired] = trigger(server, account.test_key, "customer.deleted")
        line = lines.wait_for(lambda line: fired["event"] in line)
        assert "customer.deleted" in line and "--> 503 FAILED" in line
    finally:
        code = stop(process, signal.SIGTERM)
    assert code == 0
    assert any("deleted." in line for line in lines.rest())


def test_listen_refuses_what_the_server_refuses(server: Server, account: AccountKeys) -> None:
    # Live mode never delivers to loopback addresses.
    done = run_cli(
        "listen",
        "--forward-to",
        "http://127.0.0.1:9/x",
        "--api-key",
        account.live_key,
        "--server",
        server.base_url,
    )
    assert done.returncode == 1
    assert "caja listen:" in done.stderr and "POST /webhooks failed: HTTP 422" in done.stderr


@pytest.mark.parametrize("event_type", SUPPORTED)
def test_trigger_produces_the_event(
    server: Server, shared_account: AccountKeys, receiver: Receiver, event_type: str
) -> None:
    account = shared_account
    headers = {"Authorization": f"Bearer {account.test_key}"}
    if event_type == "webhook_ping":
        created = httpx.post(
            f"{server.base_url}/webhooks", json={"url": receiver.url("/ping")}, headers=headers
        )
        assert created.status_code == 200, created.text
    fired = trigger(server, account.test_key, event_type)
    for match in fired:
        assert match["type"] == event_type
        event = httpx.get(f"{server.base_url}/events/{match['event']}", headers=headers)
        assert event.status_code == 200, event.text
        body = event.json()
        assert body["type"] == event_type
        if event_type != "webhook_ping":
            assert body["data"]["object"]["id"] == match["subject"]
        if event_type in PAYMENT_EVENTS:
            paid = body["data"]["object"]
            status = paid.get("payment_status") or paid.get("status")
            assert status == PAYMENT_EVENTS[event_type]
    if event_type in PAYMENT_EVENTS:
        # The stand-in approver the trigger registered is gone again.
        hooks = httpx.get(f"{server.base_url}/webhooks", params={"limit": 250}, headers=headers).json()
        assert not any(w.get("synchronous") for w in hooks["data"])
    if event_type == "webhook_ping":
        receiver.wait_for_sync(
            lambda: any(json.loads(r.body)["id"] == fired[0]["event"] for r in receiver.to("/ping")),
            what="the triggered ping",
        )


def test_trigger_unknown_type_lists_the_supported_ones(server: Server) -> None:
    done = run_cli("trigger", "subscription.paid", "--api-key", server.api_key, "--server", server.base_url)
    assert done.returncode == 2
    assert "subscription.paid" in done.stderr
    for event_type in SUPPORTED:
        assert event_type in done.stderr


def test_trigger_reports_api_errors(server: Server) -> None:
    done = run_cli(
        "trigger", "customer.created", "--api-key", "key_nope_nope_nope", "--server", server.base_url
    )
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr
    unreachable = run_cli(
        "trigger", "customer.created", "--api-key", "key_x", "--server", "http://127.0.0.1:9"
    )
    assert unreachable.returncode == 1 and "cannot reach Caja" in unreachable.stderr


def test_webhook_ping_without_webhooks_says_what_to_do(server: Server, account: AccountKeys) -> None:
    done = run_cli("trigger", "webhook_ping", "--api-key", account.test_key, "--server", server.base_url)
    assert done.returncode == 1
    assert "no webhook to ping" in done.stderr


def test_trigger_pays_through_the_accounts_own_synchronous_webhook(
    server: Server, account: AccountKeys, receiver: Receiver
) -> None:
    """With a synchronous webhook of its own, the account decides, as for a store: a range of
    its own moves the amount, and a decline ends the trigger with the code."""
    headers = {"Authorization": f"Bearer {account.test_key}"}
    receiver.on(
        "/approve", always(Reply(body=b'{"payable": true, "min_amount": 25000, "max_amount": 30000}'))
    )
    created = httpx.post(
        f"{server.base_url}/webhooks",
        json={"url": receiver.url("/approve"), "synchronous": True},
        headers=headers,
    )
    assert created.status_code == 200, created.text
    [fired] = trigger(server, account.test_key, "charge.paid")
    charge = httpx.get(f"{server.base_url}/charges/{fired['subject']}", headers=headers).json()
    assert charge["status"] == "paid" and charge["amount"] == 25000
    asked = [json.loads(r.body)["type"] for r in receiver.to("/approve")]
    assert "inbound_payment.lookup" in asked and "inbound_payment.payment_attempt" in asked
    hooks = httpx.get(f"{server.base_url}/webhooks", headers=headers).json()["data"]
    assert [w["id"] for w in hooks] == [created.json()["id"]]  # no stand-in was registered

    receiver.on("/approve", always(Reply(body=b'{"payable": false, "failure_code": "15"}')))
    done = run_cli("trigger", "order.paid", "--api-key", account.test_key, "--server", server.base_url)
    assert done.returncode == 1
    assert "declined 15" in done.stderr and "approval_calls" in done.stderr
    # ...quoting what the webhook answered, from its approval log.
    assert f"{receiver.url('/approve')} answered" in done.stderr and '"failure_code": "15"' in done.stderr


@pytest.mark.parametrize("event_type", ["customer.created", "charge.paid"])
def test_trigger_refuses_a_live_key_before_making_anything(
    server: Server, account: AccountKeys, event_type: str
) -> None:
    done = run_cli("trigger", event_type, "--api-key", account.live_key, "--server", server.base_url)
    assert done.returncode == 1
    assert "needs a test key" in done.stderr
    live = {"Authorization": f"Bearer {account.live_key}"}
    assert httpx.get(f"{server.base_url}/customers", headers=live).json()["data"] == []


STAND_IN = "caja trigger approver (deleted at once)"


def synchronous_webhooks(server: Server, key: str) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {key}"}
    page = httpx.get(f"{server.base_url}/webhooks", params={"limit": 250}, headers=headers).json()
    return [w for w in page["data"] if w["synchronous"]]


def register(server: Server, key: str, url: str, description: str) -> str:
    created = httpx.post(
        f"{server.base_url}/webhooks",
        json={"url": url, "synchronous": True, "description": description},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def test_trigger_removes_a_stand_in_that_a_killed_run_left_behind(
    server: Server, account: AccountKeys
) -> None:
    """A stand-in nothing answers for any more would decline every test payment: the next
    payment trigger deletes it, and pays."""
    stale = register(server, account.test_key, "http://127.0.0.1:9/caja-trigger/approve", STAND_IN)
    [fired] = trigger(server, account.test_key, "charge.paid")
    assert fired["type"] == "charge.paid"
    assert [w["id"] for w in synchronous_webhooks(server, account.test_key)] == []
    assert stale  # deleted above


def test_concurrent_triggers_each_get_their_payment(server: Server, account: AccountKeys) -> None:
    """Every run's stand-in is asked by every run's payment, and goes away while others pay."""
    runs = [
        subprocess.Popen(
            [*CAJA, "trigger", "order.reversed", "--api-key", account.test_key, "--server", server.base_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs
    assert all(TRIGGERED.match(out.strip()) for out, _ in outputs), outputs
    assert synchronous_webhooks(server, account.test_key) == []


def test_sigterm_during_a_payment_removes_the_stand_in(
    server: Server, account: AccountKeys, receiver: Receiver
) -> None:
    """Killed while its payment is declined and tried again, the trigger deletes its stand-in on
    the way out and says it was interrupted, without a traceback."""
    # Another live stand-in that answers too late: every payment is declined 19 meanwhile.
    receiver.on("/slow", always(Reply(body=b'{"payable": true}', delay=3.0)))
    slow = register(server, account.test_key, receiver.url("/slow"), STAND_IN)
    process = subprocess.Popen(
        [*CAJA, "trigger", "charge.paid", "--api-key", account.test_key, "--server", server.base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    deadline = time.monotonic() + 20
    while len(synchronous_webhooks(server, account.test_key)) < 2:
        assert time.monotonic() < deadline and process.poll() is None, "the stand-in never appeared"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert [w["id"] for w in synchronous_webhooks(server, account.test_key)] == [slow]
