"""Retention end to end: ``caja serve`` prunes on its own, ``caja prune`` on demand; the merchant's
objects stay either way."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from typing import Any

import httpx
import sqlalchemy as sa

from caja.store.db import Database
from caja.store.tables import job_attempts, jobs
from tests.conftest import CAJA
from tests.reliability.conftest import Deployment, wait_until
from tests.tools.receiver import Receiver

# Seconds an event is kept in these tests (CAJA_RETENTION_DAYS takes fractions of a day).
RETAIN = 5.0


def event_of(http: httpx.Client, object_id: str, event_type: str) -> dict[str, Any]:
    listed = http.get("/events", params={"limit": "100"})
    assert listed.status_code == 200, listed.text
    found = [
        e for e in listed.json()["data"] if e["type"] == event_type and e["data"]["object"]["id"] == object_id
    ]
    assert len(found) == 1, listed.text
    return found[0]


def sample(exposition: str, name: str) -> float:
    """One series' value in a Prometheus text exposition."""
    values = [
        float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines() if line.startswith(name + " ")
    ]
    assert len(values) == 1, (name, exposition[-2000:])
    return values[0]


def event_ids(http: httpx.Client) -> set[str]:
    listed = http.get("/events", params={"limit": "100"})
    assert listed.status_code == 200, listed.text
    assert listed.json()["has_more"] is False
    return {e["id"] for e in listed.json()["data"]}


async def test_serve_prunes_a_delivered_event_once_it_is_older_than_the_window(
    deployment: Deployment,
) -> None:
    deployment.env["CAJA_RETENTION_DAYS"] = repr(RETAIN / 86_400)
    deployment.env["CAJA_RETENTION_INTERVAL"] = "0.5"
    deployment.env["CAJA_ADMIN_TOKEN"] = token = secrets.token_urlsafe(16)
    receiver = Receiver().start()
    try:
        deployment.serve()
        with deployment.http() as http:
            hook = http.post("/webhooks", json={"url": receiver.url("/hook")})
            assert hook.status_code == 200, hook.text
            customer = http.post("/customers", json={"name": "Ana Pérez", "email": "ana@example.com"})
            assert customer.status_code == 200, customer.text
            created = event_of(http, customer.json()["id"], "customer.created")

            def delivered() -> bool:
                shown = http.get(f"/events/{created['id']}").json()
                return bool(shown.get("webhook_status") == "successful")

            wait_until(delivered, RETAIN - 1, "the event's delivery")
            logs = http.get(f"/events/{created['id']}").json()["webhook_logs"]
            assert [log["last_http_response_status"] for log in logs] == [200]

            wait_until(lambda: http.get(f"/events/{created['id']}").status_code == 404, 30, "its pruning")
            gone = http.get(f"/events/{created['id']}").json()
            assert gone["object"] == "error" and gone["type"] == "resource_not_found_error", gone
            # The merchant's objects stay, and so does a new event.
            assert http.get(f"/customers/{customer.json()['id']}").status_code == 200
            assert http.get(f"/webhooks/{hook.json()['id']}").status_code == 200
            updated = http.put(f"/customers/{customer.json()['id']}", json={"name": "Ana P."})
            assert updated.status_code == 200, updated.text
            fresh = event_of(http, customer.json()["id"], "customer.updated")
            assert http.get(f"/events/{fresh['id']}").status_code == 200
            scraped = http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert scraped.status_code == 200
            deleted = sample(scraped.text, 'caja_retention_deleted_rows_total{table="events"}')
            assert deleted >= 2  # the customer's event and the webhook's own, at least
            assert sample(scraped.text, 'caja_retention_passes_total{result="ok"}') >= 1
            assert 'caja_retention_passes_total{result="failed"}' not in scraped.text
    finally:
        receiver.stop()

    database = Database(deployment.database_url)
    try:

        def deliveries(conn: sa.Connection) -> tuple[list[str], int]:
            job_ids = list(
                conn.execute(sa.select(jobs.c.id).where(jobs.c.event_id == created["id"])).scalars()
            )
            attempts = conn.execute(sa.select(sa.func.count()).select_from(job_attempts)).scalar_one()
            kept = conn.execute(
                sa.select(sa.func.count())
                .select_from(job_attempts)
                .join(jobs, jobs.c.id == job_attempts.c.job_id)
            ).scalar_one()
            return job_ids, attempts - kept

        job_ids, orphans = await database.run_sync(deliveries)
        assert job_ids == [] and orphans == 0  # its delivery and that delivery's attempts went with it
    finally:
        await database.dispose()


def test_caja_prune_deletes_on_demand_and_counts_what_it_deleted(deployment: Deployment) -> None:
    deployment.env["CAJA_RETENTION_DAYS"] = "0"  # the server itself keeps everything
    deployment.serve()
    with deployment.http() as http:
        customer = http.post("/customers", json={"name": "Luis Gómez", "email": "luis@example.com"})
        assert customer.status_code == 200, customer.text
        old = event_ids(http)
        assert old
        time.sleep(2.0)

        def prune(*args: str) -> subprocess.CompletedProcess[str]:
            command = [*CAJA, "prune", "--database-url", deployment.database_url, *args]
            return subprocess.run(
                command, env=deployment.env, capture_output=True, text=True, timeout=60, check=False
            )

        off = prune("--json")
        assert off.returncode == 2 and "retention is off" in off.stderr
        assert prune("--days", "-1").returncode == 2
        dry = prune("--days", repr(1 / 86_400), "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["events"] == len(old) and json.loads(dry.stdout)["dry_run"] is True
        assert event_ids(http) == old
        done = prune("--days", repr(1 / 86_400), "--json")
        assert done.returncode == 0, done.stderr
        counts = json.loads(done.stdout)
        assert counts["events"] == len(old)
        assert counts["cutoff"] >= int(time.time()) - 60
        assert event_ids(http) == set()
        assert http.get(f"/customers/{customer.json()['id']}").status_code == 200
        again = prune("--days", repr(1 / 86_400), "--json")
        assert json.loads(again.stdout)["events"] == 0
