"""In ``caja serve``, e-mail gives way to the requests in flight, for at most CAJA_BACKGROUND_MAX_WAIT.

A request is held in flight by a merchant whose synchronous webhook answers a ``POST
/payment_test`` lookup slowly; an e-mail enqueued meanwhile (``POST /_caja/emails``) must wait
for that request to end, or go once it has waited its maximum.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import BACKENDS, Server
from tests.mail.conftest import wait_for_email
from tests.tools.receiver import Received, Receiver, Reply, always

SLOW = 2.5  # seconds the merchant takes to answer the lookup


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()


def _lookup_calls(receiver: Receiver) -> list[Received]:
    calls = receiver.to("/sync")
    return [c for c in calls if json.loads(c.body).get("type") == "inbound_payment.lookup"]


def _slow_request(server: Server, receiver: Receiver) -> tuple[httpx.Client, threading.Thread, list[float]]:
    """A lookup that stays in flight for SLOW seconds; returns once the merchant has been asked."""
    client = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {server.api_key}"}, timeout=15
    )
    answer = json.dumps({"payable": True, "min_amount": 100, "max_amount": 100_000}).encode()
    receiver.on("/sync", always(Reply(body=answer, delay=SLOW)))
    made = client.post("/webhooks", json={"url": receiver.url("/sync"), "synchronous": True})
    assert made.status_code == 200, made.text
    customer = client.post(
        "/customers",
        json={"name": "Ana", "email": "ana@example.com", "payment_sources": [{"type": "cash_recurrent"}]},
    )
    assert customer.status_code == 200, customer.text
    reference = customer.json()["payment_sources"]["data"][0]["reference"]
    ended: list[float] = []
    answers: list[httpx.Response] = []

    def look_up() -> None:
        body = {"event_type": "inbound_payment.lookup", "reference": reference}
        with httpx.Client(base_url=server.base_url, timeout=15) as own:
            response = own.post("/payment_test", json=body, headers=client.headers)
        ended.append(time.monotonic())
        answers.append(response)

    thread = threading.Thread(target=look_up)
    thread.start()
    # Creating the webhook also sends it a ping: wait for the lookup itself.
    receiver.wait_for_sync(lambda: bool(_lookup_calls(receiver)) or bool(answers), what="the lookup call")
    assert not answers, answers[0].text
    return client, thread, ended


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_email_waits_for_the_request_in_flight(
    backend: str, start_server: Callable[..., Server], receiver: Receiver
) -> None:
    server = start_server(backend, {"CAJA_BACKGROUND_MAX_WAIT": "30", "CAJA_APPROVAL_TIMEOUT": "10"})
    client, thread, ended = _slow_request(server, receiver)
    try:
        to = f"espera-{secrets.token_hex(4)}@example.com"
        sent = client.post("/_caja/emails", json={"to": to})
        assert sent.status_code == 200, sent.text
        time.sleep(1.0)  # an idle server sends it within milliseconds
        assert thread.is_alive(), "the slow request ended too soon for this test to mean anything"
        assert client.get("/_caja/emails", params={"search": to}).json()["data"] == []
        wait_for_email(client, to)
        # Sent only after the merchant answered, which it did SLOW seconds after it was asked.
        assert time.monotonic() - _lookup_calls(receiver)[0].at >= SLOW
        thread.join(timeout=15)
        assert ended
    finally:
        client.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_email_waits_no_longer_than_its_maximum(
    backend: str, start_server: Callable[..., Server], receiver: Receiver
) -> None:
    server = start_server(backend, {"CAJA_BACKGROUND_MAX_WAIT": "0.2", "CAJA_APPROVAL_TIMEOUT": "10"})
    client, thread, ended = _slow_request(server, receiver)
    try:
        to = f"urgente-{secrets.token_hex(4)}@example.com"
        assert client.post("/_caja/emails", json={"to": to}).status_code == 200
        wait_for_email(client, to, timeout=SLOW)
        assert thread.is_alive() and not ended  # caught while the slow request was still in flight
        thread.join(timeout=15)
    finally:
        client.close()
