"""Retention on both backends: what a pass deletes once older than the window, and what it keeps."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from caja.delivery.keyring import SecretBox
from caja.domain import ids
from caja.domain.cash_payments import CashLookup
from caja.domain.clock import FixedClock
from caja.domain.events import new_event
from caja.domain.jobs import JOB_ID_PREFIX, Attempt, JobKind, JobStatus
from caja.domain.mail import CaughtEmail
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import NewWebhook
from caja.services import retention, webhooks
from caja.store.db import Database
from caja.store.jobs import NewJob
from caja.store.tables import cash_lookups, caught_emails, events, job_attempts, jobs
from caja.store.uow import UnitOfWorkFactory
from tests.service.conftest import NOW

DAY = 86_400
WINDOW = 90 * DAY
OLD = NOW - 100 * DAY
RECENT = NOW - DAY
BOX = SecretBox(b"retention test secret")


async def column(database: Database, query: sa.Select[Any]) -> set[Any]:
    return set(await database.run_sync(lambda c: c.execute(query).scalars().all()))


async def add_event(uow: UnitOfWorkFactory, tenant: Tenant, at: int) -> tuple[str, list[str]]:
    """An event created at ``at`` and the delivery jobs its fan-out gave it."""
    event = new_event(tenant, "customer.created", {"id": ids.new_ordered_id("cus"), "object": "customer"}, at)
    async with uow(write=True) as tx:
        tx.events.add(event)
    async with uow() as tx:
        return event.id, [job.id for job in await tx.jobs.for_event(event.id)]


async def finish(uow: UnitOfWorkFactory, database: Database, job_ids: list[str], at: int) -> None:
    """What a dispatcher leaves of a delivered job: succeeded at ``at``, with its attempt."""
    async with uow(write=True) as tx:
        await tx.jobs.record_attempts(
            [
                Attempt(job_id, 1, at * 1000, 12, url="http://127.0.0.1:9/h", http_status=200)
                for job_id in job_ids
            ]
        )
    statement = (
        sa.update(jobs)
        .where(jobs.c.id.in_(job_ids))
        .values(status=JobStatus.SUCCEEDED.value, attempts=1, finished_at=at * 1000, lease_until=None)
    )
    await database.run_sync(lambda c: c.execute(statement))


async def old_webhook(uow: UnitOfWorkFactory, tenant: Tenant, database: Database) -> set[str]:
    """A webhook made a day before OLD, its own events all delivered; those events' ids.

    Rows come in time order: the webhook and its events before whatever a test adds after it.
    """
    then = FixedClock(OLD - DAY)
    await webhooks.create(uow, then, BOX, tenant, NewWebhook(url="http://127.0.0.1:9/h", description="h"))
    setup = await column(database, sa.select(events.c.id))
    await finish(uow, database, list(await column(database, sa.select(jobs.c.id))), OLD - DAY)
    return setup


def job(
    tenant: Tenant, kind: JobKind, created: int, finished: int | None, event_id: str | None = None
) -> NewJob:
    return NewJob(
        id=ids.new_ordered_id(JOB_ID_PREFIX),
        kind=kind.value,
        account_id=tenant.account_id,
        livemode=tenant.livemode,
        payload={},
        run_at=created * 1000,
        created_at=created * 1000,
        event_id=event_id,
        status=JobStatus.PENDING if finished is None else JobStatus.SUCCEEDED,
        attempts=0 if finished is None else 1,
        finished_at=None if finished is None else finished * 1000,
    )


async def test_old_events_go_with_their_deliveries_once_every_delivery_ended(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    setup = await old_webhook(uow, tenant, database)
    delivered, delivered_jobs = await add_event(uow, tenant, OLD)
    await finish(uow, database, delivered_jobs, OLD)
    retrying, retrying_jobs = await add_event(uow, tenant, OLD)
    recent, recent_jobs = await add_event(uow, tenant, RECENT)
    await finish(uow, database, recent_jobs, RECENT)
    assert delivered_jobs and retrying_jobs and recent_jobs
    assert delivered in await column(database, sa.select(events.c.id))

    report = await retention.prune(uow, clock, WINDOW)

    assert report.events == len(setup) + 1 and report.cutoff == NOW - WINDOW
    assert await column(database, sa.select(events.c.id)) == {retrying, recent}
    assert not await column(database, sa.select(jobs.c.id).where(jobs.c.id.in_(delivered_jobs)))
    assert not await column(
        database, sa.select(job_attempts.c.seq).where(job_attempts.c.job_id.in_(delivered_jobs))
    )
    # Still being delivered: kept with its jobs, whatever its age, until its deliveries end.
    kept_jobs = await column(database, sa.select(jobs.c.id).where(jobs.c.event_id.in_([retrying, recent])))
    assert kept_jobs == {*retrying_jobs, *recent_jobs}

    await finish(uow, database, retrying_jobs, OLD + DAY)
    again = await retention.prune(uow, clock, WINDOW)
    assert again.events == 1 and retrying not in await column(database, sa.select(events.c.id))
    assert recent in await column(database, sa.select(events.c.id))


async def test_finished_jobs_of_no_event_go_once_they_finished_before_the_cutoff(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    approval_old = job(tenant, JobKind.APPROVAL, OLD, OLD)
    ping_old = job(tenant, JobKind.WEBHOOK, OLD, OLD, event_id=ids.new_ordered_id("evt"))
    email_retried_late = job(tenant, JobKind.EMAIL, OLD, NOW - 10 * DAY)
    email_pending = job(tenant, JobKind.EMAIL, OLD, None)
    approval_recent = job(tenant, JobKind.APPROVAL, RECENT, RECENT)
    async with uow(write=True) as tx:
        await tx.jobs.enqueue(approval_old, ping_old, email_retried_late, email_pending, approval_recent)
    await finish(uow, database, [approval_old.id, ping_old.id], OLD)

    report = await retention.prune(uow, clock, WINDOW)

    assert report.jobs == 2 and report.events == 0
    remaining = await column(database, sa.select(jobs.c.id))
    assert remaining == {email_retried_late.id, email_pending.id, approval_recent.id}
    gone = [approval_old.id, ping_old.id]
    assert not await column(database, sa.select(job_attempts.c.seq).where(job_attempts.c.job_id.in_(gone)))


async def test_caught_emails_and_lookups_go_once_older_than_the_window(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    def email(at: int) -> CaughtEmail:
        return CaughtEmail(
            ids.new_id("eml"), at, "caja@example.com", ("a@example.com",), "Pago", "Subject: x\r\n\r\n."
        )

    def lookup(expires: int) -> CashLookup:
        return CashLookup(
            id=ids.new_ordered_id("lkp"),
            network_id="net_1",
            store="OXXO",
            reference="93000000000001",
            account_id=tenant.account_id,
            livemode=False,
            payment_source_id="src_1",
            min_amount=100,
            max_amount=1000,
            created_at=expires - 600,
            expires_at=expires,
        )

    old_email, new_email = email(OLD), email(RECENT)
    old_lookup, new_lookup = lookup(OLD), lookup(NOW + 600)
    async with uow(write=True) as tx:
        for caught in (old_email, new_email):
            await tx.caught_emails.insert(caught)
        for made in (old_lookup, new_lookup):
            await tx.cash_payments.add_lookup(made)

    report = await retention.prune(uow, clock, WINDOW)

    assert (report.caught_emails, report.lookups) == (1, 1)
    assert await column(database, sa.select(caught_emails.c.id)) == {new_email.id}
    assert await column(database, sa.select(cash_lookups.c.id)) == {new_lookup.id}


async def test_a_pass_goes_in_batches_and_ends_at_the_first_row_newer_than_the_cutoff(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    old = [(await add_event(uow, tenant, OLD + i))[0] for i in range(7)]
    recent, _ = await add_event(uow, tenant, RECENT)
    # Written after a newer one (a process whose clock lags): the pass stops before it, by design.
    late, _ = await add_event(uow, tenant, OLD)

    report = await retention.prune(uow, clock, WINDOW, batch=3)

    assert report.events == 7
    remaining = await column(database, sa.select(events.c.id))
    assert not remaining & set(old) and {recent, late} <= remaining


async def test_a_window_must_be_above_zero(uow: UnitOfWorkFactory, clock: FixedClock) -> None:
    with pytest.raises(ValueError, match="above 0"):
        await retention.prune(uow, clock, 0)


async def test_a_dry_run_counts_what_a_pass_would_delete_and_deletes_nothing(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    setup = await old_webhook(uow, tenant, database)
    for at in (OLD, OLD + 1, OLD + 2):
        _, delivered_jobs = await add_event(uow, tenant, at)
        await finish(uow, database, delivered_jobs, at)
    await add_event(uow, tenant, OLD + 3)  # still being delivered: kept
    approvals = [job(tenant, JobKind.APPROVAL, OLD + 4 + i, OLD + 4 + i) for i in range(3)]
    async with uow(write=True) as tx:
        await tx.jobs.enqueue(*approvals, job(tenant, JobKind.EMAIL, OLD + 8, None))
        await tx.caught_emails.insert(
            CaughtEmail(ids.new_id("eml"), OLD, "caja@example.com", ("a@example.com",), "Pago", "x")
        )
    await finish(uow, database, [made.id for made in approvals], OLD + 8)
    tables = (events, jobs, job_attempts, caught_emails, cash_lookups)

    async def sizes() -> list[int]:
        counts = [sa.select(sa.func.count()).select_from(table) for table in tables]
        return [await database.run_sync(lambda c, q=q: c.execute(q).scalar_one()) for q in counts]

    before = await sizes()
    dry = await retention.prune(uow, clock, WINDOW, batch=2, dry_run=True)

    assert await sizes() == before
    assert (dry.events, dry.jobs, dry.caught_emails) == (len(setup) + 3, 3, 1)
    real = await retention.prune(uow, clock, WINDOW, batch=2)
    assert real == dry
    assert await sizes() != before
