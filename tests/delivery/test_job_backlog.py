"""The outbox's backlog as ``/metrics`` reads it: unfinished jobs only, and how late the oldest is."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from caja import metrics
from caja.domain import ids
from caja.domain.jobs import JOB_ID_PREFIX, JobBacklog, JobStatus
from caja.store.jobs import NewJob
from tests.delivery.conftest import World


async def test_the_backlog_counts_unfinished_jobs_and_the_oldest_due(world: World) -> None:
    now = world.clock.now_ms()
    hook = await world.webhook("http://127.0.0.1:9/nadie")
    email = NewJob(
        id=ids.new_id(JOB_ID_PREFIX),
        kind="email",
        account_id=world.tenant.account_id,
        livemode=False,
        payload={},
        run_at=now + 60_000,  # a retry scheduled for later: waiting, but not late
        created_at=now,
    )
    await world.enqueue(
        replace(world.job(hook), run_at=now - 30_000),
        replace(world.job(hook), run_at=now - 5_000),
        replace(world.job(hook), run_at=now + 60_000),
        replace(world.job(hook), status=JobStatus.RUNNING, run_at=now - 90_000),
        replace(world.job(hook), status=JobStatus.SUCCEEDED, run_at=now - 120_000, finished_at=now),
        replace(world.job(hook), status=JobStatus.FAILED, run_at=now - 120_000, finished_at=now),
        email,
    )
    async with world.uow() as tx:
        backlog = await tx.jobs.backlog(now)
    assert backlog == [
        JobBacklog("email", "pending", 1, None),
        JobBacklog("webhook", "pending", 3, now - 30_000),
        JobBacklog("webhook", "running", 1, now - 90_000),
    ]

    # Rendered: counts by kind and status, and the lag of pending jobs only (a running job is
    # already started, however long ago it was due).
    text = metrics.exposition(backlog, now).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("caja_jobs")
    }
    assert samples == {
        ("caja_jobs", (("kind", "email"), ("status", "pending"))): 1,
        ("caja_jobs", (("kind", "webhook"), ("status", "pending"))): 3,
        ("caja_jobs", (("kind", "webhook"), ("status", "running"))): 1,
        ("caja_jobs_oldest_due_seconds", (("kind", "email"),)): 0,
        ("caja_jobs_oldest_due_seconds", (("kind", "webhook"),)): 30,
    }
