"""The outbox fan-out on both backends: each event gets one delivery job per webhook that should
receive it, written in the same transaction as the event and the change it describes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from caja.delivery.keyring import SecretBox
from caja.domain.clock import FixedClock
from caja.domain.customers import NewCustomer
from caja.domain.errors import ProcessingError
from caja.domain.events import new_event
from caja.domain.paging import PageRequest
from caja.domain.representations import event_json
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import NewWebhook, Webhook
from caja.services import accounts, customers, events, webhook_keys, webhooks
from caja.store.db import Database
from caja.store.jobs import JobRepository
from caja.store.tables import events as events_table
from caja.store.tables import jobs
from caja.store.tables import webhook_keys as keys_table
from caja.store.tables import webhooks as webhooks_table
from caja.store.uow import UnitOfWorkFactory
from tests.service.conftest import NOW

BASE = "http://caja.test"
BOX = SecretBox(b"fan-out test secret")


async def rows(database: Database, query: sa.Select[Any]) -> list[Any]:
    return list(await database.run_sync(lambda c: c.execute(query).all()))


async def hook(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, name: str, **kwargs: Any
) -> Webhook:
    request = NewWebhook(url=f"http://127.0.0.1:9/{name}", description=name, **kwargs)
    return await webhooks.create(uow, clock, BOX, tenant, request)


async def jobs_of_type(database: Database, tenant: Tenant, event_type: str) -> list[Any]:
    query = (
        sa.select(jobs, events_table.c.type)
        .join(events_table, events_table.c.id == jobs.c.event_id)
        .where(events_table.c.type == event_type, events_table.c.account_id == tenant.account_id)
        .order_by(jobs.c.seq)
    )
    return await rows(database, query)


async def test_an_event_goes_to_exactly_the_subscribed_receiving_webhooks(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    everything = await hook(uow, clock, tenant, "all")
    explicit = await hook(uow, clock, tenant, "explicit", subscribed_events=("customer.created",))
    several = await hook(
        uow, clock, tenant, "several", subscribed_events=("customer.deleted", "customer.created")
    )
    await hook(uow, clock, tenant, "other-type", subscribed_events=("payment_source.created",))
    disabled = await hook(uow, clock, tenant, "disabled")
    await hook(uow, clock, tenant, "synchronous", synchronous=True)
    await hook(uow, clock, tenant, "inactive", active=False)
    deleted = await hook(uow, clock, tenant, "deleted")
    await webhooks.delete(uow, clock, BOX, tenant, deleted.id)
    async with uow(write=True) as tx:
        await tx.webhooks.update(tenant, disabled.id, {"status": "disabled"})
    # Another account's webhook, and this account's live-mode webhook, see nothing of it.
    other = await accounts.create_account(uow, clock, "Otro")
    await hook(uow, clock, Tenant(other.account.id, livemode=False), "foreign")
    await webhooks.create(
        uow, clock, BOX, Tenant(tenant.account_id, livemode=True), NewWebhook(url="https://example.com/h")
    )

    customer = await customers.create(
        uow, clock, tenant, NewCustomer(name="Ana", email="a@example.com"), BASE
    )

    delivered = await jobs_of_type(database, tenant, "customer.created")
    assert sorted(j.webhook_id for j in delivered) == sorted([everything.id, explicit.id, several.id])
    [event_row] = await rows(
        database, sa.select(events_table).where(events_table.c.type == "customer.created")
    )
    detail = await events.get(uow, tenant, event_row.id)
    rendered = event_json(detail)
    del rendered["webhook_status"], rendered["webhook_logs"]
    for job in delivered:
        assert job.id.startswith("webhl_2") and len(job.id) == len("webhl_2svd2sh6GbqzyWBNZ")
        assert job.kind == "webhook"
        assert job.status == "pending" and job.attempts == 0
        assert (job.account_id, bool(job.livemode)) == (tenant.account_id, False)
        assert job.event_id == event_row.id
        assert job.run_at == NOW * 1000
        url = {everything.id: everything.url, explicit.id: explicit.url, several.id: several.url}
        assert job.payload["url"] == url[job.webhook_id]
        # The body is the event exactly as GET /events/{id} renders it, its delivery fields as
        # they stand when it is sent (Conekta's notification envelope).
        body = dict(job.payload["body"])
        assert (body.pop("webhook_status"), body.pop("webhook_logs")) == ("pending", [])
        assert body == rendered
        assert job.payload["body"]["data"]["object"]["id"] == customer.id
    assert detail.webhook_status == "pending"
    assert sorted(log.webhook_id or "" for log in detail.logs) == sorted(
        [everything.id, explicit.id, several.id]
    )


async def test_pings_go_only_to_the_webhook_they_test(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    first = await hook(uow, clock, tenant, "first", subscribed_events=("customer.created",))
    second = await hook(uow, clock, tenant, "second", synchronous=True)
    pings = await jobs_of_type(database, tenant, "webhook_ping")
    assert [p.webhook_id for p in pings] == [first.id, second.id]
    assert pings[0].payload["body"]["data"] == {"livemode": False, "action": "ping"}
    await webhooks.test(uow, clock, BOX, tenant, first.id)
    assert [p.webhook_id for p in await jobs_of_type(database, tenant, "webhook_ping")] == [
        first.id,
        second.id,
        first.id,
    ]
    # Neither subscribes to webhook.created (the second is synchronous): no such delivery.
    assert await jobs_of_type(database, tenant, "webhook.created") == []


async def test_creating_a_webhook_makes_sure_the_tenant_has_one_active_key(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    await hook(uow, clock, tenant, "a")
    await hook(uow, clock, tenant, "b")
    keys = await rows(database, sa.select(keys_table).where(keys_table.c.account_id == tenant.account_id))
    assert len(keys) == 1 and keys[0].active
    # The private key is stored sealed, and opens to a PEM key.
    assert keys[0].private_key.startswith("v1.")
    assert BOX.open(keys[0].private_key).startswith("-----BEGIN PRIVATE KEY-----")
    async with uow() as tx:
        signing = await tx.webhook_keys.active_signing_key(tenant)
    assert signing == (keys[0].id, keys[0].private_key)
    # Signing secrets too are sealed at rest.
    secrets = await rows(database, sa.select(webhooks_table.c.signing_secret))
    assert all(s.signing_secret.startswith("v1.") and "whsec_" not in s.signing_secret for s in secrets)


async def test_a_failing_unit_writes_neither_its_event_nor_its_deliveries(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    await hook(uow, clock, tenant, "all")
    before_events = await rows(database, sa.select(events_table.c.id))
    before_jobs = await rows(database, sa.select(jobs.c.id))

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with uow(write=True) as tx:
            tx.events.add(new_event(tenant, "customer.created", {"id": "cus_x"}, clock.now()))
            raise Boom
    assert await rows(database, sa.select(events_table.c.id)) == before_events
    assert await rows(database, sa.select(jobs.c.id)) == before_jobs


async def test_a_failure_while_enqueueing_rolls_back_the_event_and_the_change(
    uow: UnitOfWorkFactory,
    clock: FixedClock,
    tenant: Tenant,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await hook(uow, clock, tenant, "all")
    before_events = await rows(database, sa.select(events_table.c.id))
    before_jobs = await rows(database, sa.select(jobs.c.id))

    async def broken_enqueue(self: JobRepository, *new_jobs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(JobRepository, "enqueue", broken_enqueue)
    with pytest.raises(RuntimeError, match="disk full"):
        await customers.create(uow, clock, tenant, NewCustomer(name="Ana", email="a@example.com"), BASE)
    monkeypatch.undo()
    # The event rows were inserted before the jobs failed: the whole unit is gone, customer too.
    assert await rows(database, sa.select(events_table.c.id)) == before_events
    assert await rows(database, sa.select(jobs.c.id)) == before_jobs
    async with uow() as tx:
        assert (await tx.customers.page(tenant, PageRequest())).rows == []
    # And the next unit works normally.
    await customers.create(uow, clock, tenant, NewCustomer(name="Bea", email="b@example.com"), BASE)
    assert len(await jobs_of_type(database, tenant, "customer.created")) == 1


async def jobs_of_webhook(database: Database, webhook_id: str) -> list[Any]:
    return await rows(database, sa.select(jobs).where(jobs.c.webhook_id == webhook_id).order_by(jobs.c.seq))


async def test_stopping_a_webhook_cancels_its_pending_deliveries_and_a_new_url_moves_them(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    paused = await hook(uow, clock, tenant, "paused")
    gone = await hook(uow, clock, tenant, "gone")
    moved = await hook(uow, clock, tenant, "moved")
    turned = await hook(uow, clock, tenant, "turned")
    await customers.create(uow, clock, tenant, NewCustomer(name="Ana", email="a@example.com"), BASE)
    for webhook in (paused, gone, moved, turned):
        assert {j.status for j in await jobs_of_webhook(database, webhook.id)} == {"pending"}

    await webhooks.update(uow, clock, BOX, tenant, paused.id, {"active": False})
    await webhooks.delete(uow, clock, BOX, tenant, gone.id)
    await webhooks.update(uow, clock, BOX, tenant, turned.id, {"synchronous": True})
    await webhooks.update(uow, clock, BOX, tenant, moved.id, {"url": "https://example.com/moved"})

    for webhook in (paused, gone, turned):
        stopped = await jobs_of_webhook(database, webhook.id)
        assert stopped and {j.status for j in stopped} == {"cancelled"}
        assert all(j.finished_at == NOW * 1000 for j in stopped)
    kept = await jobs_of_webhook(database, moved.id)
    assert {j.status for j in kept} == {"pending"}
    # Every pending delivery now goes to the new URL, with its body untouched; plus a fresh ping.
    assert {j.payload["url"] for j in kept} == {"https://example.com/moved"}
    assert all(j.payload["body"]["id"] == j.event_id for j in kept)
    pings = [j for j in kept if j.payload["body"]["type"] == "webhook_ping"]
    assert len(pings) == 2
    async with uow() as tx:
        current = await tx.webhooks.get(tenant, moved.id, BOX)
    assert current is not None and current.status.value == "being_pinged"


async def test_a_disabled_webhook_comes_back_with_active_true(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    webhook = await hook(uow, clock, tenant, "flaky")
    async with uow(write=True) as tx:
        await tx.webhooks.update(tenant, webhook.id, {"status": "disabled", "failing_since": 1})
    back = await webhooks.update(uow, clock, BOX, tenant, webhook.id, {"active": True})
    assert back.status.value == "being_pinged" and back.failing_since is None
    pings = [
        j for j in await jobs_of_webhook(database, webhook.id) if j.payload["body"]["type"] == "webhook_ping"
    ]
    assert len(pings) == 2
    [updated] = await rows(database, sa.select(events_table).where(events_table.c.type == "webhook.updated"))
    assert updated.data["previous_attributes"] == {"status": "disabled"}
    assert updated.data["object"]["status"] == "being_pinged"


async def test_an_inactive_webhook_is_pinged_when_turned_on(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    webhook = await hook(uow, clock, tenant, "later", active=False)
    assert await jobs_of_type(database, tenant, "webhook_ping") == []
    await webhooks.update(uow, clock, BOX, tenant, webhook.id, {"description": "still off"})
    assert await jobs_of_type(database, tenant, "webhook_ping") == []
    await webhooks.update(uow, clock, BOX, tenant, webhook.id, {"active": True})
    assert [p.webhook_id for p in await jobs_of_type(database, tenant, "webhook_ping")] == [webhook.id]


async def test_concurrent_creates_never_pass_the_limit_of_ten(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    await webhook_keys.create(uow, clock, BOX, tenant)  # so no create has to generate one
    results = await asyncio.gather(
        *(hook(uow, clock, tenant, f"h{i}") for i in range(15)), return_exceptions=True
    )
    made = [r for r in results if isinstance(r, Webhook)]
    refused = [r for r in results if isinstance(r, ProcessingError)]
    assert len(made) == 10 and len(refused) == 5
    assert all(r.details[0].code == "conekta.errors.processing.webhook.limit_exceeded" for r in refused)
    live = await rows(
        database,
        sa.select(webhooks_table.c.id).where(
            webhooks_table.c.account_id == tenant.account_id, webhooks_table.c.deleted_at.is_(None)
        ),
    )
    assert sorted(r.id for r in live) == sorted(w.id for w in made)
