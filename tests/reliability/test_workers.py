"""Three ``caja worker`` processes on one PostgreSQL database deliver 10,000 events, none twice.

The events are written the way services write them (``tx.events.add`` in a unit of work, whose
fan-out enqueues one delivery per webhook in the same transaction), in bulk from the test so the
run measures delivery rather than customer creation. ``caja serve --no-dispatcher`` serves the
API meanwhile and delivers nothing itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import sqlalchemy as sa

from caja.domain.clock import SystemClock
from caja.domain.events import new_event
from caja.domain.jobs import JobKind
from caja.domain.tenancy import Tenant
from caja.store.db import Database
from caja.store.tables import jobs, webhooks
from caja.store.uow import UnitOfWorkFactory
from tests.delivery.verify import verify_digest, verify_standard
from tests.reliability.conftest import Deployment, wait_until
from tests.tools.receiver import Receiver

EVENTS = 10_000
WORKERS = 3


async def test_three_workers_deliver_ten_thousand_events_once_each(pg_deployment: Deployment) -> None:
    deployment = pg_deployment
    # Normal operation: leases long enough that no live worker's job is ever taken over.
    deployment.env["CAJA_JOB_LEASE"] = "30"
    receiver = Receiver().start()
    database = Database(deployment.database_url)
    try:
        deployment.serve("--no-dispatcher")
        with deployment.http() as http:
            created = http.post("/webhooks", json={"url": receiver.url("/hook")})
            assert created.status_code == 200, created.text
            hook = created.json()
            public_key = http.get("/webhook_keys").json()["data"][0]["public_key"]

        def hook_tenant(conn: sa.Connection) -> Tenant:
            row = conn.execute(sa.select(webhooks).where(webhooks.c.id == hook["id"])).one()
            return Tenant(row.account_id, bool(row.livemode))

        tenant = await database.run_sync(hook_tenant)
        uow = UnitOfWorkFactory(database)
        clock = SystemClock()
        for start in range(0, EVENTS, 1000):
            async with uow(write=True) as tx:
                for i in range(start, start + 1000):
                    customer = {"id": f"cus_{i:017d}", "object": "customer", "name": f"Cliente {i}"}
                    tx.events.add(new_event(tenant, "customer.created", customer, clock.now()))
        await database.dispose()

        started = time.monotonic()
        for _ in range(WORKERS):
            deployment.worker("--concurrency", "24")

        # The events and the webhook's ping.
        # About a minute on an idle 2-core machine; generous for one shared with other work.
        wait_until(lambda: len(receiver.requests) >= EVENTS + 1, 300, "10,000 deliveries")
        took = time.monotonic() - started
        await asyncio.sleep(1.0)  # anything delivered twice would show up now
        deployment.stop_all()
        # SIGTERM: the server and every worker stop gracefully, with status 0.
        assert [p.returncode for p in deployment.processes] == [0] * (WORKERS + 1)
    finally:
        receiver.stop()

    requests = [r for r in receiver.to("/hook") if json.loads(r.body)["type"] == "customer.created"]
    per_event = Counter(r.headers["webhook-id"] for r in requests)
    assert len(per_event) == EVENTS
    twice = {event_id: n for event_id, n in per_event.items() if n > 1}
    assert not twice, f"{len(twice)} events delivered more than once"
    for request in requests:
        assert json.loads(request.body)["id"] == request.headers["webhook-id"]
        verify_digest(request.body, request.headers, public_key)
        verify_standard(request.body, request.headers, hook["signing_secret"])

    database = Database(deployment.database_url)
    try:

        def job_stats(conn: sa.Connection) -> list[sa.Row[object]]:
            query = (
                sa.select(jobs.c.status, jobs.c.attempts, jobs.c.worker, sa.func.count().label("n"))
                .where(jobs.c.kind == JobKind.WEBHOOK.value)
                .group_by(jobs.c.status, jobs.c.attempts, jobs.c.worker)
            )
            return list(conn.execute(query).all())

        stats = await database.run_sync(job_stats)
    finally:
        await database.dispose()
    # Every delivery (and those of the webhook's own events and ping) succeeded at its first attempt.
    assert {(row.status, row.attempts) for row in stats} == {("succeeded", 1)}
    assert sum(row.n for row in stats) > EVENTS
    assert len({row.worker for row in stats}) == WORKERS  # each worker took its share
    print(
        f"\n{WORKERS} workers delivered {EVENTS} events in {took:.1f} s ({EVENTS / took:.0f}/s), none twice"
    )


def test_a_separate_worker_hears_of_new_jobs_at_once(pg_deployment: Deployment) -> None:
    """``caja serve --no-dispatcher`` commits, a ``caja worker`` that polls only every 5 s delivers
    within a fraction of a second: PostgreSQL's NOTIFY wakes it."""
    deployment = pg_deployment
    deployment.env["CAJA_DISPATCHER_POLL_INTERVAL"] = "5"
    receiver = Receiver().start()
    try:
        deployment.serve("--no-dispatcher")
        deployment.worker()
        with deployment.http() as http:
            assert http.post("/webhooks", json={"url": receiver.url("/hook")}).status_code == 200
            wait_until(lambda: len(receiver.requests) >= 1, 30, "the worker's first delivery")
            time.sleep(6)  # past the worker's start-up poll: from here only a notification is fast
            latencies = []
            for i in range(10):
                seen = len(receiver.requests)
                started = time.monotonic()
                answer = http.post("/customers", json={"name": f"Cliente {i}", "email": f"c{i}@example.com"})
                assert answer.status_code == 200, answer.text
                wait_until(lambda seen=seen: len(receiver.requests) > seen, 10, "a delivery")
                latencies.append(receiver.requests[-1].at - started)
    finally:
        receiver.stop()
    latencies.sort()
    assert latencies[len(latencies) // 2] < 1.0, latencies
    print(f"\ncommit (API answer) to delivery by a separate worker: median {latencies[5] * 1000:.0f} ms")
