"""Units of work on both backends: all or nothing, durable when answered, isolated from each other."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from caja.domain.clock import FixedClock
from caja.domain.customers import Customer, NewCustomer
from caja.domain.errors import ParameterValidationError, ResourceNotFoundError, ServiceUnavailableError
from caja.domain.paging import PageRequest
from caja.domain.payment_sources import NewPaymentSource, PaymentSourceType
from caja.domain.tenancy import Tenant
from caja.services import accounts, customers, payment_sources
from caja.store import migrate
from caja.store import sqlite as sqlite_backend
from caja.store.customers import to_customer
from caja.store.db import Database, normalise_url
from caja.store.postgres import PostgresBackend
from caja.store.tables import customers as customers_table
from caja.store.tables import events
from caja.store.tables import payment_sources as sources_table
from caja.store.uow import UnitOfWork, UnitOfWorkFactory
from tests.conftest import postgres_url
from tests.tools.fsyncs import count_fsyncs

BASE = "http://caja.test"
CASH = NewPaymentSource(PaymentSourceType.CASH_RECURRENT)
SPEI = NewPaymentSource(PaymentSourceType.SPEI_RECURRENT)


async def count(database: Database, table: sa.Table) -> int:
    return int(await database.run_sync(lambda c: c.scalar(sa.select(sa.func.count()).select_from(table))))


async def test_concurrent_creates_all_commit_with_their_events(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    requests = [
        NewCustomer(name=f"Cliente {i}", email=f"c{i}@example.com", payment_sources=(CASH,))
        for i in range(200)
    ]
    created = await asyncio.gather(*(customers.create(uow, clock, tenant, r, BASE) for r in requests))
    assert len({c.id for c in created}) == 200
    assert await count(database, customers_table) == 200
    assert await count(database, sources_table) == 200
    # customer.created + payment_source.created for each
    assert await count(database, events) == 400


async def test_a_failing_unit_leaves_its_batch_neighbours_intact(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    class Boom(Exception):
        pass

    async def good(i: int) -> None:
        await customers.create(uow, clock, tenant, NewCustomer(name=f"ok {i}", email="ok@example.com"), BASE)

    async def bad() -> None:
        await customers.create(uow, clock, tenant, NewCustomer(name="x", email="x@example.com"), BASE)
        async with uow(write=True) as tx:
            template = await tx.customers.get(tenant, (await _any_customer(tx, tenant)).id)
            assert template is not None
            await tx.customers.insert(replace(template, id="cus_2failingfailingfai", name="half"))
            raise Boom

    results = await asyncio.gather(
        *(good(i) for i in range(20)), bad(), *(good(i) for i in range(20, 40)), return_exceptions=True
    )
    assert sum(isinstance(r, Boom) for r in results) == 1
    assert all(r is None for r in results if not isinstance(r, Boom))
    names = await database.run_sync(lambda c: set(c.scalars(sa.select(customers_table.c.name)).all()))
    assert "half" not in names  # the failing unit's insert was rolled back...
    assert {f"ok {i}" for i in range(40)} <= names  # ...and nobody else's was
    assert "x" in names  # the unit that committed before the failure stays


async def _any_customer(tx: UnitOfWork, tenant: Tenant) -> Customer:
    page = await tx.customers.page(tenant, PageRequest(limit=1))
    return to_customer(page.rows[0])


async def test_invalid_source_rejects_the_whole_customer(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant, database: Database
) -> None:
    too_far = NewPaymentSource(PaymentSourceType.CASH_RECURRENT, expires_at=clock.now() + 400 * 86_400)
    with pytest.raises(ParameterValidationError) as caught:
        await customers.create(
            uow,
            clock,
            tenant,
            NewCustomer(name="N", email="n@example.com", payment_sources=(CASH, too_far)),
            BASE,
        )
    assert caught.value.details[0].param == "payment_sources[1].expires_at"
    assert await count(database, customers_table) == 0
    assert await count(database, sources_table) == 0
    assert await count(database, events) == 0


async def test_tenants_are_isolated(uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant) -> None:
    created = await customers.create(uow, clock, tenant, NewCustomer(name="A", email="a@example.com"), BASE)
    other = Tenant((await accounts.create_account(uow, clock, "Otro")).account.id, livemode=False)
    live_self = Tenant(tenant.account_id, livemode=True)
    for outsider in (other, live_self):
        with pytest.raises(ResourceNotFoundError):
            await customers.get(uow, outsider, created.id)
        with pytest.raises(ResourceNotFoundError):
            await customers.delete(uow, clock, outsider, created.id, BASE)
        assert (await customers.list_page(uow, outsider, PageRequest())).items == []
    assert (await customers.get(uow, tenant, created.id)).id == created.id


async def test_a_customer_read_in_one_statement_has_its_active_sources_oldest_first(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant
) -> None:
    bare = await customers.create(
        uow, clock, tenant, NewCustomer(name="Sin fuentes", email="s@example.com"), BASE
    )
    assert (await customers.get(uow, tenant, bare.id)).payment_sources == ()
    created = await customers.create(
        uow,
        clock,
        tenant,
        NewCustomer(name="Tres", email="t@example.com", payment_sources=(CASH, SPEI)),
        BASE,
    )
    third = await payment_sources.create(uow, clock, tenant, created.id, CASH, BASE)
    deleted = created.payment_sources[0]
    await payment_sources.delete(uow, clock, tenant, created.id, deleted.id, BASE)
    read = await customers.get(uow, tenant, created.id)
    assert [s.id for s in read.payment_sources] == [created.payment_sources[1].id, third.id]
    assert read.payment_sources[1] == third
    changed = ("updated_at", "default_payment_source_id", "payment_sources")
    assert replace(read, **{f: getattr(created, f) for f in changed}) == created


async def test_a_single_statement_read_refuses_a_second_statement(
    uow: UnitOfWorkFactory, tenant: Tenant
) -> None:
    async with uow(single_statement=True) as tx:
        assert await tx.accounts.get(tenant.account_id) is not None
        if tx.dialect == "postgresql":  # SQLite reads keep their transaction: nothing to guard
            with pytest.raises(RuntimeError, match="second statement"):
                await tx.customers.get_any("cus_none")


async def test_a_read_without_a_snapshot_sees_each_statement_at_its_own_moment(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant
) -> None:
    """``snapshot=False``: several statements and, on PostgreSQL, no transaction around them, so a
    commit between two of them shows in the second; in an ordinary read it does not. (SQLite's
    reads always keep their snapshot: a BEGIN on the loop costs microseconds.)"""

    async def count(tx: UnitOfWork) -> int:
        return len((await tx.customers.page(tenant, PageRequest(limit=250))).rows)

    async def create(name: str) -> None:
        await customers.create(uow, clock, tenant, NewCustomer(name=name, email="n@example.com"), BASE)

    async with uow(snapshot=False) as tx:
        before = await count(tx)
        await create("Sin instantánea")
        unsnapped = await count(tx) - before
    async with uow() as tx:
        before = await count(tx)
        await create("Con instantánea")
        snapped = await count(tx) - before
    assert snapped == 0
    assert unsnapped == (1 if tx.dialect == "postgresql" else 0)


async def test_clabes_are_unique_under_concurrency(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant
) -> None:
    owner = await customers.create(uow, clock, tenant, NewCustomer(name="S", email="s@example.com"), BASE)
    sources = await asyncio.gather(
        *(payment_sources.create(uow, clock, tenant, owner.id, SPEI, BASE) for _ in range(100))
    )
    references = [s.reference for s in sources]
    assert len(set(references)) == 100
    assert all(r.startswith("646180") and len(r) == 18 for r in references)


async def sqlite_with_account(path: Path) -> tuple[Database, UnitOfWorkFactory, FixedClock, Tenant]:
    """A migrated SQLite file of the test's own, with one account."""
    database = Database(f"sqlite:///{path}")
    await migrate.upgrade(database)
    uow = UnitOfWorkFactory(database)
    clock = FixedClock(1_800_000_000)
    tenant = Tenant((await accounts.create_account(uow, clock, "D")).account.id, livemode=False)
    return database, uow, clock, tenant


async def test_sqlite_commits_are_durable_once_answered(tmp_path: Path) -> None:
    """A create that returned is on disk: a separate connection opened afterwards sees it."""
    path = tmp_path / "durable.db"
    database, uow, clock, tenant = await sqlite_with_account(path)
    created = await asyncio.gather(
        *(
            customers.create(uow, clock, tenant, NewCustomer(name=f"d{i}", email="d@example.com"), BASE)
            for i in range(50)
        )
    )
    # No dispose: a process killed now must still have these rows.
    with sqlite3.connect(path) as raw:
        stored = {row[0] for row in raw.execute("SELECT id FROM customers")}
    assert {c.id for c in created} <= stored
    await database.dispose()


async def test_sqlite_writes_that_need_not_be_durable_wait_for_no_fsync_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``durable=False`` units (the dispatcher's bookkeeping) commit without an fsync of their
    own; the next durable unit's fsync covers them, and so does closing the database."""
    path = tmp_path / "lazy.db"
    database = Database(f"sqlite:///{path}")
    await database.run_sync(lambda c: c.execute(sa.text("CREATE TABLE scratch (n INTEGER)")))
    synced = count_fsyncs(monkeypatch)

    async def insert(n: int, *, durable: bool) -> None:
        async with database.unit(write=True, durable=durable) as conn:
            await conn.execute(sa.text("INSERT INTO scratch (n) VALUES (:n)"), {"n": n})

    def stored() -> set[int]:
        with sqlite3.connect(path) as raw:
            return {row[0] for row in raw.execute("SELECT n FROM scratch")}

    await asyncio.gather(*(insert(n, durable=False) for n in range(10)))
    assert synced == []
    assert stored() == set(range(10))  # committed, visible to another connection
    # A durable unit, alone or batched with lazy ones: one fsync, which its caller waited for.
    await asyncio.gather(insert(10, durable=True), *(insert(n, durable=False) for n in range(11, 20)))
    assert synced == [f"{path}-wal"]
    await insert(20, durable=False)
    assert len(synced) == 1
    await database.dispose()
    assert len(synced) == 2  # what a stop leaves behind is on disk
    assert stored() == set(range(21))


async def test_sqlite_writes_that_need_not_be_durable_join_the_next_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While durable writes come, a lazy unit waits for the next one and shares its transaction
    (one COMMIT for both), or commits alone ``JOIN_WAIT`` later; with none coming, or with a caller
    waiting for it (``prompt``), it does not wait at all."""
    database = Database(f"sqlite:///{tmp_path / 'join.db'}")
    await database.run_sync(lambda c: c.execute(sa.text("CREATE TABLE scratch (n INTEGER)")))
    backend = database._backend
    assert isinstance(backend, sqlite_backend.SQLiteBackend)
    commits: list[int] = []
    real_commit = backend._commit

    def counting_commit(tx: sa.RootTransaction) -> None:
        commits.append(1)
        real_commit(tx)

    backend._commit = counting_commit  # type: ignore[method-assign]

    async def insert(n: int, *, durable: bool, prompt: bool = False) -> float:
        async with database.unit(write=True, durable=durable, prompt=prompt) as conn:
            await conn.execute(sa.text("INSERT INTO scratch (n) VALUES (:n)"), {"n": n})
        return time.monotonic()

    # No durable write yet: nothing to wait for, even with a wait far longer than the test's limit.
    monkeypatch.setattr(sqlite_backend, "JOIN_WAIT", 30.0)
    await asyncio.wait_for(insert(0, durable=False), 10)
    assert len(commits) == 1
    await insert(1, durable=True)
    assert len(commits) == 2
    # Durable writes are coming: the lazy unit waits and joins the next one's batch.
    lazy = asyncio.ensure_future(insert(2, durable=False))
    await asyncio.sleep(0.05)
    assert not lazy.done()
    await insert(3, durable=True)
    await asyncio.wait_for(lazy, 10)
    assert len(commits) == 3
    # A lazy unit that a caller waits for (``prompt``) commits at once, though durable ones come.
    await asyncio.wait_for(insert(5, durable=False, prompt=True), 10)
    assert len(commits) == 4
    # ...and commits alone once the wait is over.
    monkeypatch.setattr(sqlite_backend, "JOIN_WAIT", 0.05)
    started = time.monotonic()
    finished = await insert(4, durable=False)
    assert len(commits) == 5 and finished - started >= 0.045
    await database.dispose()


async def test_sqlite_writers_wait_for_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    """A write lock held elsewhere is waited for (BEGIN IMMEDIATE runs in a thread, never on the
    loop), and the unit then commits as usual."""
    path = tmp_path / "locked.db"
    database, uow, clock, tenant = await sqlite_with_account(path)
    other = sqlite3.connect(path, isolation_level=None)  # another connection: SQLite cannot tell a process
    other.execute("BEGIN IMMEDIATE")
    create = asyncio.ensure_future(
        customers.create(uow, clock, tenant, NewCustomer(name="Esperó", email="e@example.com"), BASE)
    )
    await asyncio.sleep(0.2)
    assert not create.done()
    other.execute("ROLLBACK")
    other.close()
    created = await asyncio.wait_for(create, 10)
    assert (await customers.get(uow, tenant, created.id)).name == "Esperó"
    await database.dispose()


def wal_restarts(path: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time the WAL starts over."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


async def busy_writer(path: Path, restart_bytes: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Creates by 50 callers at once; (catch-ups, WAL restarts). Every create must be kept."""
    monkeypatch.setattr(sqlite_backend, "RESTART_WAL_BYTES", restart_bytes)
    monkeypatch.setattr(sqlite_backend, "CHECKPOINT_INTERVAL", 0.0)
    database, uow, clock, tenant = await sqlite_with_account(path)
    backend = database._backend
    assert isinstance(backend, sqlite_backend.SQLiteBackend)
    first = wal_restarts(path)

    async def create(i: int) -> Customer:
        customer = NewCustomer(name=f"w{i}", email="w@example.com", payment_sources=(CASH,))
        return await customers.create(uow, clock, tenant, customer, BASE)

    async def keep_creating(worker: int) -> list[Customer]:
        return [await create(worker * 12 + i) for i in range(12)]

    # 50 callers creating one customer after another: some are always waiting for the writer.
    created = [c for made in await asyncio.gather(*(keep_creating(w) for w in range(50))) for c in made]
    restarts = wal_restarts(path) - first
    assert sorted(c.name for c in created) == sorted(f"w{i}" for i in range(600))
    catch_ups = backend.catch_ups
    await database.dispose()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM customers").fetchone()[0] == 600
    return catch_ups, restarts


async def test_sqlite_wal_starts_over_after_a_checkpoint_caught_up_with_the_writer_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its limit a checkpoint copies the rest of the WAL with the writer held, and the WAL
    starts over (SQLite counts each restart in its header). No write is lost."""
    catch_ups, restarts = await busy_writer(tmp_path / "limit.db", 1, monkeypatch)
    assert catch_ups > 0 and restarts > 0
    # Below its limit the writer is never held up for it (the WAL may still start over by itself,
    # when the writer happens to be idle as a checkpoint ends).
    catch_ups, _ = await busy_writer(tmp_path / "none.db", 2**62, monkeypatch)
    assert catch_ups == 0


async def test_a_postgres_pool_that_stays_busy_answers_service_unavailable() -> None:
    """No overflow: past the pool's size a unit waits, and after the pool's timeout it is a 503."""
    backend = PostgresBackend(normalise_url(postgres_url()), pool_size=1, pool_timeout=0.2)
    try:
        async with backend.read_unit():
            with pytest.raises(ServiceUnavailableError) as caught:
                async with backend.read_unit():
                    pass
        assert caught.value.http_status == 503
        assert caught.value.details[0].code == "caja.errors.api.system.busy"
        async with backend.read_unit(single_statement=True) as conn:  # the connection came back
            assert (await conn.scalar(sa.text("SELECT 1"))) == 1
    finally:
        await backend.dispose()


async def test_sqlite_a_batch_opened_while_the_last_one_gathered_units_is_still_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fills up while its ender waits a turn commits at once; a batch opened right
    after it must still be ended, though its ender was already on its way for the full one."""
    monkeypatch.setattr(sqlite_backend, "MAX_BATCH", 2)
    database = Database(f"sqlite:///{tmp_path / 'gather.db'}")
    await database.run_sync(lambda c: c.execute(sa.text("CREATE TABLE scratch (n INTEGER)")))

    async def insert(n: int) -> None:
        async with database.unit(write=True) as conn:
            await conn.execute(sa.text("INSERT INTO scratch (n) VALUES (:n)"), {"n": n})

    first = asyncio.ensure_future(insert(1))
    await asyncio.sleep(0)  # the first unit runs and leaves its batch open, to be ended a turn later
    # These two come during that turn: one fills the batch (it commits), the other opens the next.
    others = [asyncio.ensure_future(insert(n)) for n in (2, 3)]
    await asyncio.wait_for(asyncio.gather(first, *others), 10)
    with sqlite3.connect(tmp_path / "gather.db") as raw:
        assert {row[0] for row in raw.execute("SELECT n FROM scratch")} == {1, 2, 3}
    await database.dispose()


async def test_sqlite_a_caller_cancelled_while_its_batch_commits_leaves_its_neighbours_waiting(
    tmp_path: Path,
) -> None:
    """Each unit waits on its own future: cancelling one caller (a store that hung up) while its
    batch is being made durable must neither cancel the others' wait nor undo its own write."""
    path = tmp_path / "cancel.db"
    database = Database(f"sqlite:///{path}")
    await database.run_sync(lambda c: c.execute(sa.text("CREATE TABLE scratch (n INTEGER)")))
    reached_commit_wait = asyncio.Event()

    async def insert(n: int) -> None:
        async with database.unit(write=True) as conn:
            await conn.execute(sa.text("INSERT INTO scratch (n) VALUES (:n)"), {"n": n})
            if n == 0:
                reached_commit_wait.set()

    tasks = [asyncio.ensure_future(insert(n)) for n in range(5)]
    await reached_commit_wait.wait()
    await asyncio.sleep(0)  # the first unit is now waiting for its batch to be durable
    tasks[0].cancel()
    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert isinstance(done[0], asyncio.CancelledError)
    assert done[1:] == [None] * 4
    with sqlite3.connect(path) as raw:
        # The cancelled caller's unit was in the batch: it committed with the rest.
        assert {row[0] for row in raw.execute("SELECT n FROM scratch")} == set(range(5))
    await database.dispose()
