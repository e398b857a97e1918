"""Services against real databases, in-process: a fresh SQLite file or the PostgreSQL test database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from caja.domain.clock import FixedClock
from caja.domain.tenancy import Tenant
from caja.services import accounts
from caja.store import migrate
from caja.store.db import Database
from caja.store.tables import metadata
from caja.store.uow import UnitOfWorkFactory
from tests.conftest import BACKENDS, postgres_url
from tests.tools.databases import own_database

NOW = 1_800_000_000


async def _empty_postgres(url: str) -> Database:
    database = Database(url)
    await migrate.upgrade(database)

    def truncate(conn: sa.Connection) -> None:
        names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")

    await database.run_sync(truncate)
    return database


@pytest.fixture(scope="session")
def service_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of these tests' own: they leave jobs due (a delivery being retried,
    an e-mail not yet sent), which a ``caja serve`` of another suite would claim and attempt."""
    with own_database(postgres_url(), "service") as url:
        yield url


@pytest.fixture(params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, service_postgres_url: str
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'caja.db'}")
        await migrate.upgrade(database)
    else:
        database = await _empty_postgres(service_postgres_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def uow(database: Database) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(database)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
async def tenant(uow: UnitOfWorkFactory, clock: FixedClock) -> Tenant:
    """A new merchant account's test mode."""
    issued = await accounts.create_account(uow, clock, "Comercio")
    return Tenant(issued.account.id, livemode=False)
