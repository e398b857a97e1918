"""The dispatcher against a real receiver, on SQLite and PostgreSQL: delivery, retries, health, fairness."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import sqlalchemy as sa

from caja.delivery.dispatcher import AttemptOutcome, JobContext
from caja.delivery.priority import BackgroundLane, Foreground
from caja.delivery.runtime import build_dispatcher, new_registry
from caja.delivery.signing import SignatureWorkers
from caja.domain import ids
from caja.domain.jobs import JOB_ID_PREFIX, Job, JobStatus
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import WebhookStatus
from caja.store.jobs import NewJob
from caja.store.tables import events
from tests.delivery.conftest import FAST, Hook, World
from tests.delivery.verify import verify_both
from tests.tools.receiver import Received, Receiver, Reply, always


async def wait_job(world: World, job_id: str, status: JobStatus, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        async with world.uow() as tx:
            job = await tx.jobs.get(job_id)
        assert job is not None
        if job.status is status:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {job.status}, not {status}")
        await asyncio.sleep(0.02)


async def run_one_job(
    world: World, url: str, until: JobStatus, **dispatcher_changes: Any
) -> tuple[Hook, NewJob]:
    """A webhook at ``url`` and one job for it, run by a dispatcher of its own until ``until``."""
    hook = await world.webhook(url)
    job = world.job(hook)
    dispatcher = world.dispatcher(**dispatcher_changes)
    await dispatcher.start()
    try:
        await world.enqueue(job)
        await wait_job(world, job.id, until)
    finally:
        await dispatcher.stop()
    return hook, job


@pytest.mark.parametrize("signing_threads", [0, 2], ids=["signed-on-the-loop", "signed-in-threads"])
async def test_delivers_a_signed_event_and_records_the_attempt(
    world: World, receiver: Receiver, signing_threads: int
) -> None:
    hook = await world.webhook(receiver.url("/hook"))
    job = world.job(hook, name="Ana")
    signing = SignatureWorkers(signing_threads)
    dispatcher = world.dispatcher(signing=signing)
    await dispatcher.start()
    try:
        await world.enqueue(job)
        await receiver.wait_for(lambda: len(receiver.to("/hook")) == 1, what="the delivery")
        await wait_job(world, job.id, JobStatus.SUCCEEDED)
    finally:
        await dispatcher.stop()
        signing.close()

    (request,) = receiver.to("/hook")
    verify_both(request.body, request.headers, world.public_key, hook.secret)
    assert json.loads(request.body) == job.payload["body"]
    assert request.headers["webhook-id"] == job.event_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Caja-Webhooks/")

    async with world.uow() as tx:
        (attempt,) = await tx.jobs.attempts(job.id)
        done = await tx.jobs.get(job.id)
    assert done is not None and done.attempts == 1
    assert attempt.attempt == 1 and attempt.http_status == 200 and attempt.error is None
    assert attempt.url == hook.url
    assert attempt.request_body is not None and attempt.request_body.encode() == request.body
    assert (
        attempt.request_headers is not None and attempt.request_headers["Digest"] == request.headers["digest"]
    )
    assert attempt.response_body == '{"ok": true}'
    assert (await world.webhook_row(hook)).status == WebhookStatus.LISTENING


async def test_three_failures_then_success_makes_four_logged_attempts(
    world: World, receiver: Receiver
) -> None:
    receiver.on("/flaky", lambda r: Reply(500, b"boom") if r.nth <= 3 else Reply(200))
    hook, job = await run_one_job(world, receiver.url("/flaky"), JobStatus.SUCCEEDED)

    requests = receiver.to("/flaky")
    assert len(requests) == 4
    # The same event, the same bytes-level content, every time; every try signed afresh.
    assert {r.headers["webhook-id"] for r in requests} == {job.event_id}
    for request in requests:
        verify_both(request.body, request.headers, world.public_key, hook.secret)
    async with world.uow() as tx:
        attempts = await tx.jobs.attempts(job.id)
        done = await tx.jobs.get(job.id)
    assert [a.http_status for a in attempts] == [500, 500, 500, 200]
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert [a.error for a in attempts] == ["HTTP 500"] * 3 + [None]
    assert attempts[0].response_body == "boom"
    assert done is not None and done.attempts == 4
    # A success after failures: listening again, the run of failures over.
    row = await world.webhook_row(hook)
    assert row.status == WebhookStatus.LISTENING and row.failing_since is None


async def test_retry_after_is_honoured(world: World, receiver: Receiver) -> None:
    receiver.on(
        "/busy",
        lambda r: Reply(503, headers={"Retry-After": "1"}) if r.nth == 1 else Reply(200),
    )
    await run_one_job(world, receiver.url("/busy"), JobStatus.SUCCEEDED)
    first, second = receiver.to("/busy")
    # The schedule alone would retry after 50 ms; the receiver asked for a second.
    assert second.at - first.at >= 0.95


async def test_gives_up_when_the_schedule_is_spent(world: World, receiver: Receiver) -> None:
    receiver.on("/down", always(Reply(502)))
    hook, _ = await run_one_job(
        world, receiver.url("/down"), JobStatus.FAILED, retry_schedule=(0, 0.02, 0.02)
    )
    assert len(receiver.to("/down")) == 3
    row = await world.webhook_row(hook)
    assert row.status == WebhookStatus.INTERMITTENT_ERRORS and row.failing_since is not None


async def test_connection_refused_is_retried(world: World, receiver: Receiver) -> None:
    # Nothing listens on the first URL; then the merchant fixes the webhook's URL.
    receiver_port_closed = Receiver()
    dead_url = receiver_port_closed.url("/nobody")
    receiver_port_closed.stop()
    hook = await world.webhook(dead_url)
    job = world.job(hook)
    dispatcher = world.dispatcher(retry_schedule=(0, 0.3, 0.3, 0.3, 0.3))
    await dispatcher.start()
    try:
        await world.enqueue(job)
        deadline = time.monotonic() + 5
        while True:
            async with world.uow() as tx:
                attempts = await tx.jobs.attempts(job.id)
            if attempts:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert attempts[0].http_status is None and attempts[0].error
        await world.database.run_sync(
            lambda c: c.exec_driver_sql(
                f"UPDATE webhooks SET url = '{receiver.url('/fixed')}' WHERE id = '{hook.id}'"
            )
        )
        await wait_job(world, job.id, JobStatus.SUCCEEDED)
    finally:
        await dispatcher.stop()
    assert len(receiver.to("/fixed")) == 1


async def test_410_gone_disables_the_webhook(world: World, receiver: Receiver) -> None:
    receiver.on("/gone", always(Reply(410)))
    hook = await world.webhook(receiver.url("/gone"))
    first, later = world.job(hook), world.job(hook)
    dispatcher = world.dispatcher()
    await dispatcher.start()
    try:
        await world.enqueue(first)
        await wait_job(world, first.id, JobStatus.FAILED)
        await world.enqueue(later)
        await wait_job(world, later.id, JobStatus.CANCELLED)
    finally:
        await dispatcher.stop()
    assert len(receiver.to("/gone")) == 1  # once: 410 is not retried, and nothing is sent after it
    row = await world.webhook_row(hook)
    assert row.status == WebhookStatus.DISABLED and row.active is False
    disabled = await disabled_events(world)
    assert [e.data["object"]["id"] for e in disabled] == [hook.id]
    assert disabled[0].data["object"]["status"] == "disabled"


async def disabled_events(world: World) -> list[sa.Row[object]]:
    query = sa.select(events).where(events.c.type == "webhook.disabled").order_by(events.c.seq)
    return list(await world.database.run_sync(lambda c: c.execute(query).all()))


async def test_failing_longer_than_the_period_disables_the_webhook(world: World, receiver: Receiver) -> None:
    receiver.on("/failing", always(Reply(500)))
    hook = await world.webhook(receiver.url("/failing"))
    dispatcher = world.dispatcher(retry_schedule=(0,) + (0.1,) * 40, disable_after=1.0)
    await dispatcher.start()
    try:
        await world.enqueue(world.job(hook))
        # Failing, but not for long yet: intermittent errors, the run of failures dated.
        deadline = time.monotonic() + 5
        while (row := await world.webhook_row(hook)).status == WebhookStatus.LISTENING:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert row.status == WebhookStatus.INTERMITTENT_ERRORS and row.failing_since is not None
        deadline = time.monotonic() + 5
        while (await world.webhook_row(hook)).status != WebhookStatus.DISABLED:
            assert time.monotonic() < deadline, "the webhook was never disabled"
            await asyncio.sleep(0.05)
        count = len(receiver.to("/failing"))
        await asyncio.sleep(0.4)
        # Disabled: its pending retry is cancelled, nothing more is sent.
        assert len(receiver.to("/failing")) == count
    finally:
        await dispatcher.stop()
    row = await world.webhook_row(hook)
    assert row.active is False
    assert row.updated_at >= row.created_at
    disabled = await disabled_events(world)
    assert len(disabled) == 1 and disabled[0].data["object"]["id"] == hook.id
    elapsed = receiver.to("/failing")[-1].at - receiver.to("/failing")[0].at
    assert elapsed >= 0.95


async def test_a_slow_endpoint_does_not_delay_a_fast_one(world: World, receiver: Receiver) -> None:
    receiver.on("/slow", always(Reply(200, delay=1.5)))
    slow = await world.webhook(receiver.url("/slow"))
    fast = await world.webhook(receiver.url("/fast"))
    dispatcher = world.dispatcher(concurrency=8, per_endpoint=2, webhook_timeout=5.0)
    await dispatcher.start()
    try:
        # The slow endpoint's backlog is older: a plain FIFO would make the fast one wait for it.
        await world.enqueue(*[world.job(slow) for _ in range(20)])
        await asyncio.sleep(0.1)
        await world.enqueue(*[world.job(fast) for _ in range(20)])
        await receiver.wait_for(lambda: len(receiver.to("/fast")) == 20, within=5, what="the fast endpoint")
        # Behind a FIFO the fast endpoint would wait for three rounds of the slow one; here all
        # twenty arrived while the slow endpoint was still in its first round (two at a time).
        assert len(receiver.to("/slow")) <= 4
    finally:
        await dispatcher.stop()
    slow_replies = [r.at + 1.5 for r in receiver.to("/slow")]
    assert receiver.to("/fast")[-1].at < sorted(slow_replies)[1], "the fast endpoint waited for the slow one"


POLL = 5.0


async def test_commits_wake_the_dispatcher_at_once(world: World, receiver: Receiver) -> None:
    hook = await world.webhook(receiver.url("/quick"))
    # A long poll interval: only the commit hook can make delivery fast.
    dispatcher = world.dispatcher(poll_interval=POLL)
    await dispatcher.start()
    latencies = []
    try:
        await asyncio.sleep(0.05)
        for i in range(15):
            job = world.job(hook)
            started = time.monotonic()
            await world.enqueue(job)
            await receiver.wait_for(lambda i=i: len(receiver.to("/quick")) == i + 1, within=3)
            latencies.append(receiver.to("/quick")[-1].at - started)
    finally:
        await dispatcher.stop()
    # Relative to the configured poll, not a speed: every job was delivered long before the
    # dispatcher's next poll could have found it, so only the commit can have woken it.
    assert max(latencies) < POLL / 2, latencies


async def test_jobs_of_a_dead_worker_are_delivered_after_its_lease(world: World, receiver: Receiver) -> None:
    hook = await world.webhook(receiver.url("/orphan"))
    jobs = [world.job(hook) for _ in range(5)]
    await world.enqueue(*jobs)
    # A worker claims them and dies before doing anything.
    async with world.uow(write=True) as tx:
        now_ms = world.clock.now_ms()
        taken = await tx.jobs.claim(now_ms=now_ms, worker="dead", lease_until=now_ms + 500, limit=10)
    assert len(taken) == 5
    dispatcher = world.dispatcher(lease=0.4)
    await dispatcher.start()
    try:
        await receiver.wait_for(lambda: len(receiver.to("/orphan")) == 5, within=5)
        for job in jobs:
            await wait_job(world, job.id, JobStatus.SUCCEEDED)
    finally:
        await dispatcher.stop()
    assert receiver.to("/orphan")[0].at  # delivered, once each
    assert sorted(r.headers["webhook-id"] for r in receiver.to("/orphan")) == sorted(j.event_id for j in jobs)


async def test_stop_hands_back_running_jobs(world: World, receiver: Receiver) -> None:
    receiver.on("/stuck", always(Reply(200, delay=3.0)))
    hook = await world.webhook(receiver.url("/stuck"))
    job = world.job(hook)
    dispatcher = world.dispatcher(webhook_timeout=10.0)
    await dispatcher.start()
    await world.enqueue(job)
    await receiver.wait_for(lambda: len(receiver.to("/stuck")) == 1)
    from dataclasses import replace as _replace

    dispatcher._config = _replace(dispatcher._config, grace=0.2)
    started = time.monotonic()
    await dispatcher.stop()
    # Stopping did not wait for the stuck request (it answers only after 3 s).
    assert time.monotonic() - started < 3.0
    async with world.uow() as tx:
        back = await tx.jobs.get(job.id)
    assert back is not None and back.status is JobStatus.PENDING and back.worker is None
    assert back.attempts == 0


async def test_two_dispatchers_on_one_database_deliver_each_job_once(
    world: World, receiver: Receiver
) -> None:
    # Answers slower than a poll interval and than a "fast" endpoint: one dispatcher cannot take
    # and finish all 200 before the other's next poll finds the rest (with instant answers it
    # could, as the other's first claim may skip every row the first one had locked).
    for i in range(4):
        receiver.on(f"/many/{i}", always(Reply(200, delay=0.15)))
    hooks = [await world.webhook(receiver.url(f"/many/{i}")) for i in range(4)]
    jobs = [world.job(hooks[i % 4]) for i in range(200)]
    first, second = world.dispatcher(), world.dispatcher()
    await first.start()
    await second.start()
    try:
        await world.enqueue(*jobs)
        await receiver.wait_for(lambda: len(receiver.requests) >= 200, within=20)
        await asyncio.sleep(0.2)
    finally:
        await first.stop()
        await second.stop()
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 200 and set(ids) == {j.event_id for j in jobs}
    assert first.finished > 0 and second.finished > 0


async def test_live_webhooks_never_reach_private_addresses(world: World, receiver: Receiver) -> None:
    """A live webhook whose name resolves to a private address (here ``localhost``) gets nothing;
    the same endpoint in test mode is delivered to, through the same dispatcher."""
    live_tenant = Tenant(world.tenant.account_id, livemode=True)
    live = await world.webhook(f"http://localhost:{receiver.port}/live", tenant=live_tenant)
    test = await world.webhook(f"http://localhost:{receiver.port}/test")
    live_job, test_job = world.job(live), world.job(test)
    dispatcher = world.dispatcher(retry_schedule=(0,))
    await dispatcher.start()
    try:
        await world.enqueue(live_job, test_job)
        await wait_job(world, test_job.id, JobStatus.SUCCEEDED)
        await wait_job(world, live_job.id, JobStatus.FAILED)
    finally:
        await dispatcher.stop()
    assert receiver.to("/live") == [] and len(receiver.to("/test")) == 1
    async with world.uow() as tx:
        (attempt,) = await tx.jobs.attempts(live_job.id)
    assert attempt.http_status is None and attempt.error is not None
    assert "non-public address" in attempt.error


async def test_retry_after_as_an_http_date(world: World, receiver: Receiver) -> None:
    def busy_until_later(request: Received) -> Reply:
        if request.nth > 1:
            return Reply(200)
        when = datetime.now(tz=UTC) + timedelta(seconds=2)
        return Reply(429, headers={"Retry-After": format_datetime(when, usegmt=True)})

    receiver.on("/date", busy_until_later)
    await run_one_job(world, receiver.url("/date"), JobStatus.SUCCEEDED)
    first, second = receiver.to("/date")
    # An HTTP date has whole seconds: "in two seconds" is at least one second away.
    assert second.at - first.at >= 0.95


async def test_only_the_start_of_a_long_answer_is_kept(world: World, receiver: Receiver) -> None:
    receiver.on("/chatty", always(Reply(200, b"x" * 20_000)))
    _, job = await run_one_job(world, receiver.url("/chatty"), JobStatus.SUCCEEDED)
    async with world.uow() as tx:
        (attempt,) = await tx.jobs.attempts(job.id)
    assert attempt.response_body == "x" * 4096
    assert attempt.response_headers is not None and attempt.response_headers["content-length"] == "20000"


async def test_a_claim_takes_deeper_from_endpoints_marked_deep(world: World, receiver: Receiver) -> None:
    fast = await world.webhook(receiver.url("/fast"))
    other = await world.webhook(receiver.url("/other"))
    await world.enqueue(*[world.job(fast) for _ in range(10)], *[world.job(other) for _ in range(10)])
    async with world.uow(write=True) as tx:
        now_ms = world.clock.now_ms()
        taken = await tx.jobs.claim(
            now_ms=now_ms,
            worker="w",
            lease_until=now_ms + 30_000,
            limit=20,
            per_key=2,
            busy={fast.id: 1},
            deep={fast.id: 7},
        )
    per_hook = {hook.id: sum(job.webhook_id == hook.id for job in taken) for hook in (fast, other)}
    # The deep endpoint up to 7 with the one already held; the other at the ordinary bound.
    assert per_hook == {fast.id: 6, other.id: 2}


async def test_a_failing_endpoint_hands_back_the_jobs_held_beyond_the_ordinary_depth(
    world: World, receiver: Receiver
) -> None:
    receiver.on("/flaky", always(Reply(500)))
    hook = await world.webhook(receiver.url("/flaky"))
    jobs = [world.job(hook) for _ in range(12)]
    await world.enqueue(*jobs)
    dispatcher = world.dispatcher(per_endpoint=1, concurrency=4, poll_interval=30.0)
    # As if its earlier attempts had been fast: the worker holds 8 of its jobs rather than 2.
    dispatcher._fast[hook.id] = 0.001
    await dispatcher.start()
    try:
        await receiver.wait_for(lambda: len(receiver.to("/flaky")) >= 1)
        # The failure makes the endpoint ordinary again: what it held beyond 2 goes back.
        await receiver.wait_for(
            lambda: dispatcher._unfinished_per_key.get(hook.id, 0) <= 2 and not dispatcher._releases,
            within=10,
        )
        # What the worker handed back reaches the database when its release commits.
        for _ in range(200):
            async with world.uow() as tx:
                counts = await tx.jobs.counts()
            if counts.get("running", 0) <= 2:
                break
            await asyncio.sleep(0.05)
        assert counts.get("running", 0) <= 2, counts
        assert hook.id not in dispatcher._fast
    finally:
        await dispatcher.stop()
    async with world.uow() as tx:
        states = [await tx.jobs.get(job.id) for job in jobs]
    # Nothing lost: every job is pending again (handed back, or waiting for its retry), or failed
    # once its schedule was spent; none is left running.
    assert all(s is not None and s.status in (JobStatus.PENDING, JobStatus.FAILED) for s in states)


def _email_job(world: World) -> NewJob:
    """A job of the kind the tests below register as background, due now."""
    now_ms = world.clock.now_ms()
    return NewJob(
        id=ids.new_id(JOB_ID_PREFIX),
        kind="email",
        account_id=world.tenant.account_id,
        livemode=False,
        payload={},
        run_at=now_ms,
        created_at=now_ms,
    )


async def test_background_jobs_wait_for_a_moment_with_no_request_in_flight(
    world: World, receiver: Receiver
) -> None:
    """A background kind (e-mail, in caja serve) starts only once the requests in flight are over;
    a webhook's delivery meanwhile does not wait."""
    started: list[tuple[str, float]] = []

    async def background(job: Job, context: JobContext) -> AttemptOutcome:
        started.append((job.id, time.monotonic()))
        return AttemptOutcome(ok=True)

    registry = new_registry(FAST)
    registry.register("email", background, background=True)
    foreground = Foreground()
    lane = BackgroundLane(foreground, max_wait=30)
    dispatcher = build_dispatcher(world.uow, world.clock, world.box, FAST, registry=registry, lane=lane)
    hook = await world.webhook(receiver.url("/now"))
    mail = _email_job(world)
    await dispatcher.start()
    try:
        foreground.enter()  # a request in flight
        await world.enqueue(mail, world.job(hook))
        await receiver.wait_for(lambda: len(receiver.to("/now")) == 1, what="the webhook's delivery")
        await asyncio.sleep(0.3)
        assert started == []
        ended = time.monotonic()
        foreground.leave()
        await wait_job(world, mail.id, JobStatus.SUCCEEDED)
    finally:
        await dispatcher.stop()
    [(job_id, at)] = started
    assert job_id == mail.id and at >= ended
    assert (lane.waited, lane.overdue) == (1, 0)


async def test_a_commit_of_background_jobs_alone_waits_for_the_next_claim(
    world: World, receiver: Receiver
) -> None:
    """Receipts committed one per payment are claimed together: by the next poll, or by the next
    claim that other work wakes the dispatcher for."""
    started: list[str] = []

    async def background(job: Job, context: JobContext) -> AttemptOutcome:
        started.append(job.id)
        return AttemptOutcome(ok=True)

    settings = replace(FAST, poll_interval=30.0)
    registry = new_registry(settings)
    registry.register("email", background, background=True)
    dispatcher = build_dispatcher(world.uow, world.clock, world.box, settings, registry=registry)
    hook = await world.webhook(receiver.url("/wakes"))
    mails = [_email_job(world) for _ in range(3)]
    await dispatcher.start()
    try:
        await asyncio.sleep(0.2)  # the first poll, at start, found nothing
        for mail in mails:
            await world.enqueue(mail)
        await asyncio.sleep(0.5)
        assert started == []
        claims = dispatcher.claimed
        await world.enqueue(world.job(hook))  # a webhook's delivery wakes it at once
        await receiver.wait_for(lambda: len(receiver.to("/wakes")) == 1, what="the webhook's delivery")
        for mail in mails:
            await wait_job(world, mail.id, JobStatus.SUCCEEDED, within=5.0)
    finally:
        await dispatcher.stop()
    assert sorted(started) == sorted(m.id for m in mails)
    assert dispatcher.claimed - claims == 4
