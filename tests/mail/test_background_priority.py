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
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import BACKENDS, Server
from tests.mail.conftest import wait_for_email
from tests.tools.receiver import Received, Receiver, Reply, always

SLOW = 2.5  # seconds the merchant takes to answer the lookup


@dataclass
class InFlight:
    """A lookup held in flight by a slow merchant, and a client of the same account."""

    client: httpx.Client
    thread: threading.Thread
    asked_at: float  # when the merchant received the lookup (time.monotonic())
    answered: list[httpx.Response]


@contextmanager
def request_in_flight(server: Server, receiver: Receiver) -> Iterator[InFlight]:
    """A ``POST /payment_test`` lookup that stays in flight for SLOW seconds, from the moment the
    merchant has been asked; the client is closed and the lookup awaited afterwards."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    client = httpx.Client(base_url=server.base_url, headers=headers, timeout=15)
    path = f"/sync/{secrets.token_hex(4)}"
    answer = json.dumps({"payable": True, "min_amount": 100, "max_amount": 100_000}).encode()
    receiver.on(path, always(Reply(body=answer, delay=SLOW)))
    made = client.post("/webhooks", json={"url": receiver.url(path), "synchronous": True})
    assert made.status_code == 200, made.text
    customer = client.post(
        "/customers",
        json={"name": "Ana", "email": "ana@example.com", "payment_sources": [{"type": "cash_recurrent"}]},
    )
    assert customer.status_code == 200, customer.text
    reference = customer.json()["payment_sources"]["data"][0]["reference"]
    answered: list[httpx.Response] = []

    def look_up() -> None:
        body = {"event_type": "inbound_payment.lookup", "reference": reference}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=15) as own:
            answered.append(own.post("/payment_test", json=body))

    def lookups() -> list[Received]:
        # Creating the webhook also sends it a ping: the lookup is what holds the request.
        calls = receiver.to(path)
        return [c for c in calls if json.loads(c.body).get("type") == "inbound_payment.lookup"]

    thread = threading.Thread(target=look_up)
    thread.start()
    try:
        receiver.wait_for_sync(lambda: bool(lookups()) or bool(answered), what="the lookup call")
        assert not answered, answered[0].text
        yield InFlight(client, thread, lookups()[0].at, answered)
    finally:
        thread.join(timeout=15)
        client.close()
    assert answered and answered[0].status_code == 200, answered


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_email_waits_for_the_request_in_flight(
    backend: str, start_server: Callable[..., Server], receiver: Receiver
) -> None:
    server = start_server(backend, {"CAJA_BACKGROUND_MAX_WAIT": "30", "CAJA_APPROVAL_TIMEOUT": "10"})
    with request_in_flight(server, receiver) as held:
        to = f"espera-{secrets.token_hex(4)}@example.com"
        sent = held.client.post("/_caja/emails", json={"to": to})
        assert sent.status_code == 200, sent.text
        time.sleep(1.0)  # an idle server sends it within milliseconds
        assert held.thread.is_alive(), "the slow request ended too soon for this test to mean anything"
        assert held.client.get("/_caja/emails", params={"search": to}).json()["data"] == []
        wait_for_email(held.client, to)
        # Sent only after the merchant answered, which it did SLOW seconds after it was asked.
        assert time.monotonic() - held.asked_at >= SLOW


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_email_waits_no_longer_than_its_maximum(
    backend: str, start_server: Callable[..., Server], receiver: Receiver
) -> None:
    server = start_server(backend, {"CAJA_BACKGROUND_MAX_WAIT": "0.2", "CAJA_APPROVAL_TIMEOUT": "10"})
    with request_in_flight(server, receiver) as held:
        to = f"urgente-{secrets.token_hex(4)}@example.com"
        assert held.client.post("/_caja/emails", json={"to": to}).status_code == 200
        wait_for_email(held.client, to, timeout=SLOW)
        # Caught while the slow request was still in flight.
        assert held.thread.is_alive() and not held.answered
