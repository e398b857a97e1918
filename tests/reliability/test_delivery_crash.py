"""SIGKILL the server while it delivers 1,000 events; after a restart every event arrives, signed.

Delivery is at-least-once: a job whose worker died mid-attempt is retried once its lease runs
out, so a receiver may see an event twice (it dedupes on ``webhook-id``), but never zero times.
"""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from cryptography.exceptions import InvalidSignature

from tests.delivery.verify import verify_digest, verify_standard
from tests.reliability.conftest import Deployment, wait_until
from tests.tools.receiver import Received, Receiver, Reply

EVENTS = 1000


def customer_events(receiver: Receiver) -> list[tuple[Received, dict[str, object]]]:
    found = []
    for request in receiver.to("/hook"):
        try:
            body = json.loads(request.body)
        except ValueError:
            # A request the SIGKILL cut off mid-body: its sender never heard a 2xx, so the job is
            # retried after the restart; it is not a delivery.
            continue
        if body["type"] == "customer.created":
            found.append((request, body))
    return found


def test_sigkill_during_delivery_loses_nothing(deployment: Deployment) -> None:
    receiver = Receiver().start()
    slow = threading.Event()
    slow.set()
    # Slow at first (about 40 a second), so the kill lands while most deliveries are still to come.
    receiver.on("/hook", lambda _r: Reply(200, delay=0.2 if slow.is_set() else 0.0))
    try:
        server = deployment.serve()
        with deployment.http() as http:
            created = http.post("/webhooks", json={"url": receiver.url("/hook")})
            assert created.status_code == 200, created.text
            secret = created.json()["signing_secret"]

            def create_customer(i: int) -> str:
                answer = http.post("/customers", json={"name": f"Cliente {i}", "email": f"c{i}@example.com"})
                assert answer.status_code == 200, answer.text
                return str(answer.json()["id"])

            with ThreadPoolExecutor(max_workers=8) as pool:
                customer_ids = set(pool.map(create_customer, range(EVENTS)))
            assert len(customer_ids) == EVENTS
            public_keys = [k["public_key"] for k in http.get("/webhook_keys").json()["data"]]

        wait_until(lambda: len(customer_events(receiver)) >= 150, 60, "the first deliveries")
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        delivered_before_kill = len(customer_events(receiver))
        assert delivered_before_kill < EVENTS, "everything was delivered before the kill: nothing tested"

        slow.clear()
        deployment.serve()

        def all_arrived() -> bool:
            return {b["data"]["object"]["id"] for _r, b in customer_events(receiver)} >= customer_ids  # type: ignore[index]

        wait_until(all_arrived, 120, "every event after the restart")
    finally:
        receiver.stop()

    deliveries = customer_events(receiver)
    per_event = Counter(body["id"] for _request, body in deliveries)
    assert len(per_event) == EVENTS
    for request, _body in deliveries:
        verify_standard(request.body, request.headers, secret)
        assert any(_digest_ok(request, key) for key in public_keys)
    duplicates = sum(n - 1 for n in per_event.values())
    print(
        f"\n{deployment.backend}: {delivered_before_kill} delivered before SIGKILL, "
        f"{len(deliveries)} deliveries of {EVENTS} events, {duplicates} duplicates"
    )


def _digest_ok(request: Received, public_key: str) -> bool:
    try:
        verify_digest(request.body, request.headers, public_key)
    except InvalidSignature:
        return False
    return True
