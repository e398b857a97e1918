"""A ``caja worker`` serves its own ``GET /metrics`` (``--metrics-port``): what it delivered is
counted there, not by the API server beside it, and it still stops cleanly on SIGTERM."""

from __future__ import annotations

import secrets
import signal

import httpx

from tests.conftest import free_port
from tests.reliability.conftest import Deployment, wait_until
from tests.tools.metrics import Scrape, scrape
from tests.tools.receiver import Receiver

DELIVERED = {"kind": "webhook", "result": "succeeded"}


def test_a_worker_counts_its_deliveries_on_its_own_metrics_port(deployment: Deployment) -> None:
    token = secrets.token_urlsafe(24)
    deployment.env["CAJA_ADMIN_TOKEN"] = token
    port = free_port()
    worker_metrics = f"http://127.0.0.1:{port}"
    receiver = Receiver().start()
    try:
        deployment.serve("--no-dispatcher")
        worker = deployment.worker("--metrics-port", str(port))

        def listening() -> bool:
            try:
                return httpx.get(f"{worker_metrics}/metrics", timeout=1).status_code == 401
            except httpx.TransportError:
                return False

        wait_until(listening, 30, "the worker's metrics port")
        with deployment.http() as http:
            assert http.post("/webhooks", json={"url": receiver.url("/hook")}).status_code == 200
            for i in range(3):
                answer = http.post("/customers", json={"name": f"Cliente {i}", "email": f"c{i}@example.com"})
                assert answer.status_code == 200, answer.text
        # The webhook's ping and the three customer.created events.
        wait_until(lambda: len(receiver.requests) >= 4, 30, "the worker's deliveries")

        def worker_scrape() -> Scrape:
            return scrape(worker_metrics, token)

        wait_until(
            lambda: worker_scrape().value("caja_job_attempts_total", **DELIVERED) >= 4,
            15,
            "the deliveries recorded",
        )
        counted = worker_scrape()
        assert counted.value("caja_job_attempt_duration_seconds_count", kind="webhook") >= 4
        # The API server delivered nothing (--no-dispatcher): its counters say so.
        served = scrape(deployment.base_url, token)
        assert served.value("caja_job_attempts_total", **DELIVERED) == 0
        assert served.value("caja_http_requests_total", method="POST", route="/customers", status="200") == 3
        # The worker's port answers only /metrics, and only to the token.
        assert httpx.get(f"{worker_metrics}/customers").status_code == 404
        wrong = httpx.get(f"{worker_metrics}/metrics", headers={"Authorization": f"Bearer {token}x"})
        assert wrong.status_code == 401 and wrong.json()["type"] == "authentication_error"
    finally:
        receiver.stop()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, deployment.log("workers.log")
    assert not listening()
