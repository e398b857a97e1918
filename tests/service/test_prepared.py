"""Prepared statements run on the driver (sqlite3, asyncpg) behave as through SQLAlchemy."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa

from caja.domain import ids
from caja.store.db import Database
from caja.store.events import _INSERT as INSERT_EVENTS
from caja.store.payment_sources import _INSERT_IF_UNIQUE
from caja.store.prepared import Prepared
from caja.store.tables import accounts, customers, events, payment_sources

NOW = 1_800_000_000_000
ACCOUNT = "acc_preparedtest0000001"
_COLUMNS = [c.key for c in customers.columns if c.key != "seq"]
INSERT_CUSTOMER = Prepared(customers.insert(), keys=_COLUMNS)
GET_CUSTOMER = Prepared(sa.select(customers).where(customers.c.id == sa.bindparam("id")))
# On SQLite a prepared statement's error is the sqlite3 driver's own; on PostgreSQL it is translated
# into SQLAlchemy's, as ``execute`` raises it.
INTEGRITY_ERRORS = (sa.exc.IntegrityError, sqlite3.IntegrityError)
JSON_VALUES: list[Any] = [
    {},
    {"a": 1, "b": [1, 2.5, None, True, False], "c": {"d": "ñandú €"}, "e": ""},
    {"big": 2**53 + 1, "neg": -0.125, "nested": [[{"x": []}]]},
]


def customer_row(metadata: Any, antifraud: Any = None, **over: Any) -> dict[str, Any]:
    row = {
        "id": ids.new_id(ids.CUSTOMER),
        "account_id": ACCOUNT,
        "livemode": False,
        "name": "Cliente Ñ",
        "email": "c@example.com",
        "phone": None,
        "corporate": True,
        "custom_reference": "",
        "date_of_birth": None,
        "national_id": None,
        "metadata": metadata,
        "antifraud_info": antifraud,
        "default_payment_source_id": None,
        "created_at": NOW,
        "updated_at": NOW,
        "deleted_at": None,
    }
    row.update(over)
    return row


@pytest.fixture
async def db(database: Database) -> Database:
    async with database.unit(write=True) as conn:
        await conn.execute(
            accounts.insert().values(id=ACCOUNT, name="Comercio", is_sandbox=False, created_at=NOW)
        )
    return database


async def stored_json(db: Database, customer_id: str) -> tuple[Any, ...]:
    """The JSON columns as the database holds them (text), to compare what each path wrote."""
    async with db.unit(write=False) as conn:
        query = sa.select(
            sa.cast(customers.c.metadata, sa.Text), sa.cast(customers.c.antifraud_info, sa.Text)
        ).where(customers.c.id == customer_id)
        return tuple((await conn.execute(query)).one())


@pytest.mark.parametrize("metadata", JSON_VALUES)
async def test_rows_round_trip_as_through_sqlalchemy(db: Database, metadata: Any) -> None:
    prepared = customer_row(metadata, antifraud={"score": 3})
    core = customer_row(metadata, antifraud={"score": 3})
    async with db.unit(write=True) as conn:
        assert (await conn.run(INSERT_CUSTOMER, prepared)).first() is None
        await conn.execute(customers.insert().values(**core))
    assert await stored_json(db, prepared["id"]) == await stored_json(db, core["id"])
    async with db.unit(write=False) as conn:
        fast = (await conn.run(GET_CUSTOMER, {"id": prepared["id"]})).first()
        slow = (await conn.execute(sa.select(customers).where(customers.c.id == prepared["id"]))).first()
    assert fast is not None and slow is not None
    assert tuple(fast) == tuple(slow)
    assert fast.metadata == metadata and isinstance(fast.metadata, dict)
    assert fast.antifraud_info == {"score": 3}
    assert fast.corporate is True and fast.livemode is False
    assert fast.created_at == NOW


async def test_a_null_json_value_is_stored_as_sqlalchemy_stores_it(db: Database) -> None:
    prepared, core = customer_row({}), customer_row({})
    async with db.unit(write=True) as conn:
        await conn.run(INSERT_CUSTOMER, prepared)
        await conn.execute(customers.insert().values(**core))
    assert await stored_json(db, prepared["id"]) == await stored_json(db, core["id"])
    async with db.unit(write=False) as conn:
        row = (await conn.run(GET_CUSTOMER, {"id": prepared["id"]})).first()
    assert row is not None and row.antifraud_info is None


async def test_result_helpers(db: Database) -> None:
    row = customer_row({"k": "v"})
    async with db.unit(write=True) as conn:
        await conn.run(INSERT_CUSTOMER, row)
    async with db.unit(write=False) as conn:
        found = await conn.run(GET_CUSTOMER, {"id": row["id"]})
        assert found.scalar() > 0  # seq, the first column
        assert len(found.all()) == 1
        assert found.scalar_one() == found.first()[0]
        missing = await conn.run(GET_CUSTOMER, {"id": "cus_none"})
        assert missing.first() is None and missing.all() == [] and missing.scalar() is None


async def test_insert_if_unique_returns_a_row_only_when_it_inserts(db: Database) -> None:
    owner = customer_row({})
    source = {
        "id": ids.new_id(ids.PAYMENT_SOURCE),
        "account_id": ACCOUNT,
        "livemode": False,
        "customer_id": owner["id"],
        "type": "cash_recurrent",
        "reference": "93000000000000000001",
        "expires_at": NOW * 2,
        "status": "active",
        "created_at": NOW,
        "updated_at": NOW,
    }
    async with db.unit(write=True) as conn:
        await conn.run(INSERT_CUSTOMER, owner)
        statement = _INSERT_IF_UNIQUE[conn.dialect.name]
        first = (await conn.run(statement, source)).first()
        assert first is not None and first.seq > 0
        # The same reference again: nothing inserted, no row back, and the transaction goes on.
        again = await conn.run(statement, {**source, "id": ids.new_id(ids.PAYMENT_SOURCE)})
        assert again.first() is None
        count = sa.select(sa.func.count()).select_from(payment_sources)
        assert await conn.scalar(count) == 1


async def test_executemany_inserts_every_row(db: Database) -> None:
    rows = [
        {
            "id": ids.new_hex_id(),
            "account_id": ACCOUNT,
            "livemode": False,
            "type": "customer.created",
            "data": {"object": {"i": i}},
            "created_at": NOW + i,
        }
        for i in range(5)
    ]
    async with db.unit(write=True) as conn:
        assert (await conn.run(INSERT_EVENTS, rows)).all() == []
        assert (await conn.run(INSERT_EVENTS, [])).all() == []
    async with db.unit(write=False) as conn:
        found = (await conn.execute(sa.select(events.c.data).order_by(events.c.created_at))).scalars().all()
    assert found == [r["data"] for r in rows]


async def test_a_unique_violation_raises_integrity_error_and_rolls_back_the_unit(db: Database) -> None:
    row = customer_row({})
    with pytest.raises(INTEGRITY_ERRORS) as raised:
        async with db.unit(write=True) as conn:
            await conn.execute(customers.insert().values(**customer_row({}, id="cus_rolledback")))
            await conn.run(INSERT_CUSTOMER, row)
            await conn.run(INSERT_CUSTOMER, row)
    if db.dialect == "postgresql":
        assert isinstance(raised.value, sa.exc.IntegrityError)
        assert "customers" in str(raised.value)
    # Both the Core insert and the prepared one were undone, and the pool's connections still work.
    for _ in range(3):
        async with db.unit(write=False) as conn:
            count = sa.select(sa.func.count()).select_from(customers)
            assert await conn.scalar(count) == 0
            assert (await conn.run(GET_CUSTOMER, {"id": row["id"]})).first() is None


async def test_core_and_prepared_statements_share_the_transaction(db: Database) -> None:
    row = customer_row({})

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.unit(write=True) as conn:
            await conn.run(INSERT_CUSTOMER, row)
            # Core sees the prepared insert: the same connection, inside the same transaction.
            seen = sa.select(customers.c.id).where(customers.c.id == row["id"])
            assert await conn.scalar(seen) == row["id"]
            await conn.execute(customers.update().where(customers.c.id == row["id"]).values(name="Otro"))
            assert (await conn.run(GET_CUSTOMER, {"id": row["id"]})).first().name == "Otro"
            raise Abort
    async with db.unit(write=False) as conn:
        assert (await conn.run(GET_CUSTOMER, {"id": row["id"]})).first() is None


async def test_a_failed_statement_leaves_the_pool_usable(db: Database) -> None:
    for _ in range(12):
        with pytest.raises(sa.exc.DBAPIError):
            async with db.unit(write=True) as conn:
                await conn.execute(sa.text("SELECT * FROM no_such_table"))
    for _ in range(12):
        with pytest.raises(INTEGRITY_ERRORS):
            async with db.unit(write=True) as conn:
                await conn.run(INSERT_CUSTOMER, customer_row({}, account_id=None))
    async with db.unit(write=False) as conn:
        assert await conn.scalar(sa.select(sa.literal(7))) == 7
