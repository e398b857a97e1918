"""Delivery tests: real databases (both backends), a real HTTP receiver, real dispatchers in-process."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from caja.config import DeliverySettings
from caja.delivery.dispatcher import Dispatcher
from caja.delivery.keyring import SecretBox, generate_rsa_keypair, new_signing_secret
from caja.delivery.runtime import build_dispatcher
from caja.delivery.signing import SignatureWorkers
from caja.domain import ids
from caja.domain.clock import SystemClock
from caja.domain.jobs import JOB_ID_PREFIX, JobKind
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import WebhookStatus
from caja.services import accounts
from caja.store import migrate
from caja.store.db import Database
from caja.store.jobs import NewJob
from caja.store.tables import webhook_keys, webhooks
from caja.store.uow import UnitOfWorkFactory
from tests.conftest import BACKENDS, postgres_url
from tests.service.conftest import _empty_postgres
from tests.tools.databases import own_database
from tests.tools.receiver import Receiver

# Short, jitter-free schedules: tests never sleep through real minutes.
FAST = DeliverySettings(
    concurrency=16,
    per_endpoint=4,
    poll_interval=0.05,
    lease=2.0,
    webhook_timeout=2.0,
    retry_schedule=(0, 0.05, 0.05, 0.05, 0.05, 0.05),
    retry_jitter=0.0,
    max_retry_after=3.0,
    disable_after=3600.0,
    approval_timeout=2.0,
)
_KEYPAIRS: list[tuple[str, str]] = []


def keypair() -> tuple[str, str]:
    """One RSA key pair per test session (generating one costs tens of milliseconds)."""
    if not _KEYPAIRS:
        _KEYPAIRS.append(generate_rsa_keypair())
    return _KEYPAIRS[0]


@dataclass(frozen=True)
class Hook:
    id: str
    url: str
    secret: str
    tenant: Tenant


@dataclass
class World:
    """One tenant with a webhook key, and helpers to add webhooks and jobs."""

    uow: UnitOfWorkFactory
    database: Database
    box: SecretBox
    clock: SystemClock
    tenant: Tenant
    public_key: str

    async def webhook(
        self,
        url: str,
        *,
        synchronous: bool = False,
        status: str = WebhookStatus.LISTENING.value,
        tenant: Tenant | None = None,
    ) -> Hook:
        tenant = tenant or self.tenant
        hook_id = ids.new_hex_id()
        secret = new_signing_secret()
        now = self.clock.now()
        row = {
            "id": hook_id,
            "account_id": tenant.account_id,
            "livemode": tenant.livemode,
            "url": url,
            "description": None,
            "subscribed_events": [],
            "status": status,
            "active": True,
            "synchronous": synchronous,
            "signing_secret": self.box.seal(secret),
            "failing_since": None,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        await self.database.run_sync(lambda c: c.execute(webhooks.insert(), row))
        return Hook(hook_id, url, secret, tenant)

    def job(self, hook: Hook, event_type: str = "customer.created", **data: Any) -> NewJob:
        event_id = ids.new_hex_id()
        now_ms = self.clock.now_ms()
        envelope = {
            "data": {
                "object": {"id": ids.new_id("cus_"), "object": "customer", **data},
                "previous_attributes": {},
            },
            "livemode": hook.tenant.livemode,
            "webhook_status": "pending",
            "webhook_logs": [],
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created_at": now_ms // 1000,
        }
        return NewJob(
            id=ids.new_id(JOB_ID_PREFIX),
            kind=JobKind.WEBHOOK.value,
            account_id=hook.tenant.account_id,
            livemode=hook.tenant.livemode,
            event_id=event_id,
            webhook_id=hook.id,
            payload={"url": hook.url, "body": envelope},
            run_at=now_ms,
            created_at=now_ms,
        )

    async def enqueue(self, *jobs: NewJob) -> None:
        async with self.uow(write=True) as tx:
            await tx.jobs.enqueue(*jobs)

    def dispatcher(
        self, settings: DeliverySettings = FAST, *, signing: SignatureWorkers | None = None, **changes: Any
    ) -> Dispatcher:
        return build_dispatcher(self.uow, self.clock, self.box, replace(settings, **changes), signing=signing)

    async def webhook_row(self, hook: Hook) -> Any:
        return await self.database.run_sync(
            lambda c: c.execute(sa.select(webhooks).where(webhooks.c.id == hook.id)).first()
        )


@pytest.fixture(scope="session")
def delivery_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of these tests' own: a dispatcher claims any due job of its database,
    so one left running by another suite (a ``caja serve`` fixture) must not share it."""
    with own_database(postgres_url(), "delivery") as url:
        yield url


@pytest.fixture(params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, delivery_postgres_url: str
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'caja.db'}")
        await migrate.upgrade(database)
    else:
        database = await _empty_postgres(delivery_postgres_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def uow(database: Database) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(database)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def world(uow: UnitOfWorkFactory, database: Database) -> AsyncIterator[World]:
    clock = SystemClock()
    issued = await accounts.create_account(uow, clock, "Comercio")
    tenant = Tenant(issued.account.id, livemode=False)
    box = SecretBox(secrets.token_bytes(32))
    public_pem, private_pem = keypair()
    now = clock.now()
    key_row = {
        "id": ids.new_hex_id(),
        "account_id": tenant.account_id,
        "livemode": False,
        "public_key": public_pem,
        "private_key": box.seal(private_pem),
        "active": True,
        "created_at": now,
        "deactivated_at": None,
        "deleted_at": None,
    }
    await database.run_sync(lambda c: c.execute(webhook_keys.insert(), key_row))
    yield World(uow, database, box, clock, tenant, public_pem)
