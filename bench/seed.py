"""Seed a Caja database with many customers, in bulk, for the "create rate at scale" benchmark.

Each seeded customer looks like one made through ``POST /customers`` with one ``cash_recurrent``
payment source: a ``customers`` row, a ``payment_sources`` row (a unique 20-digit Luhn-checked
reference) and two ``events`` rows (``customer.created`` and ``payment_source.created``). Event
payloads are compact stand-ins (the ids and types, not the whole object) so a million customers fit
in about a gigabyte; every index gets the same entries the API would give it.

Ids and references come from deterministic bijections of the row number (an affine map modulo the
id space, then base58 or decimal), so they are unique by construction, look random, and reach the
unique indexes in random order, as real ones do. ``customer_id(i)`` recomputes any seeded id.

The schema comes from ``caja migrate``; rows follow the ``caja.store.tables`` column lists and go
in 50,000-row transactions: the sqlite3 driver's executemany for SQLite, binary COPY
(``asyncpg.copy_records_to_table``) for PostgreSQL.

Usage: ``python bench/seed.py --database-url sqlite:////tmp/seed.db --rows 1000000``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import multiprocessing.pool
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from caja.domain.references import RECURRENT_CASH_PREFIX, luhn_check_digit
from caja.store import tables

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
ID_SPACE = 58**16
REFERENCE_SPACE = 10**15
EVENT_SPACE = 16**24
BATCH = 50_000
# A year of history before the seeding time, so created_at values look like a real backlog.
HISTORY_SECONDS = 365 * 86_400
ACCOUNT_ID = "acc_2BenchSeededAcct1"


def _bijection(modulus: int, fraction: float, offset: int) -> tuple[int, int]:
    """``i -> (i * a + offset) % modulus`` with ``a`` near ``fraction * modulus`` and coprime to it.

    A multiplier of the modulus' own size scatters consecutive rows across the whole id space.
    """
    a = int(modulus * fraction) | 1
    while math.gcd(a, modulus) != 1:
        a += 2
    return a, offset % modulus


_CUSTOMER = _bijection(ID_SPACE, 0.6180339887, 0x27D4EB2F165667C5)
_SOURCE = _bijection(ID_SPACE, 0.7548776662, 0x85EBCA77C2B2AE63)
_EVENT = _bijection(EVENT_SPACE, 0.5698402910, 0xFF51AFD7ED558CCD)
_REFERENCE = _bijection(REFERENCE_SPACE, 0.4142135623, 0x5851F42D4C957F2D)

_PAIRS = [a + b for a in BASE58 for b in BASE58]


def _base58(value: int) -> str:
    """16 base58 digits, two at a time."""
    pairs = []
    for _ in range(8):
        value, pair = divmod(value, 3364)
        pairs.append(_PAIRS[pair])
    return "".join(reversed(pairs))


def customer_id(i: int) -> str:
    return "cus_2" + _base58((i * _CUSTOMER[0] + _CUSTOMER[1]) % ID_SPACE)


def source_id(i: int) -> str:
    return "off_ref_2" + _base58((i * _SOURCE[0] + _SOURCE[1]) % ID_SPACE)


def event_id(i: int) -> str:
    return format((i * _EVENT[0] + _EVENT[1]) % EVENT_SPACE, "024x")


def reference(i: int) -> str:
    body = format((i * _REFERENCE[0] + _REFERENCE[1]) % REFERENCE_SPACE, "015d")
    payload = RECURRENT_CASH_PREFIX + body
    return payload + luhn_check_digit(payload)


# The columns each seeded row fills, in order; ``_columns`` checks them against the tables.
CUSTOMER_COLUMNS = (
    "id", "account_id", "livemode", "name", "email", "phone", "corporate", "custom_reference",
    "metadata", "default_payment_source_id", "created_at", "updated_at",
)  # fmt: skip
SOURCE_COLUMNS = (
    "id", "account_id", "livemode", "customer_id", "type", "reference", "expires_at", "status",
    "created_at", "updated_at",
)  # fmt: skip
EVENT_COLUMNS = ("id", "account_id", "livemode", "type", "data", "created_at")

Row = tuple[Any, ...]


def _rows(start: int, stop: int, total: int, account_id: str, now: int) -> tuple[list[Row], ...]:
    """Plain tuples (JSON columns as JSON text): a million dicts would cost more than the inserts."""
    customers: list[Row] = []
    sources: list[Row] = []
    events: list[Row] = []
    for i in range(start, stop):
        created = now - HISTORY_SECONDS + (i * HISTORY_SECONDS) // max(total, 1)
        cid, sid = customer_id(i), source_id(i)
        customers.append(
            (
                cid, account_id, False, f"Cliente Sembrado {i}", f"cliente{i}@example.com",
                f"+52155{i % 100_000_000:08d}", False, "", "{}", sid, created, created,
            )
        )  # fmt: skip
        sources.append(
            (sid, account_id, False, cid, "cash_recurrent", reference(i), 0, "active", created, created)
        )
        customer_data = f'{{"object": {{"id": "{cid}", "object": "customer"}}, "previous_attributes": {{}}}}'
        events.append((event_id(2 * i), account_id, False, "customer.created", customer_data, created))
        source_data = (
            f'{{"object": {{"id": "{sid}", "object": "payment_source"}}, "previous_attributes": {{}}}}'
        )
        events.append(
            (event_id(2 * i + 1), account_id, False, "payment_source.created", source_data, created)
        )
    return customers, sources, events


def _columns(table: sa.Table, columns: tuple[str, ...]) -> list[str]:
    """Fail loudly if the schema moved: every column must exist, and every required one be filled."""
    names = {c.name for c in table.columns}
    unknown = set(columns) - names
    required = {
        c.name
        for c in table.columns
        if not c.nullable and c.server_default is None and c.autoincrement is not True and c.name != "seq"
    }
    missing = required - set(columns)
    if unknown or missing:
        raise SystemExit(f"bench/seed.py is out of date for {table.name}: {unknown=} {missing=}")
    return list(columns)


def _batches(rows: int, now: int) -> Iterator[tuple[int, int, int, int]]:
    for start in range(0, rows, BATCH):
        yield start, min(start + BATCH, rows), rows, now


def migrate(database_url: str) -> None:
    """The schema as ``caja migrate`` makes it (the same command a deployment runs)."""
    caja = Path(sys.executable).with_name("caja")
    command = [str(caja)] if caja.exists() else [sys.executable, "-m", "caja"]
    subprocess.run([*command, "migrate", "--database-url", database_url], check=True, timeout=300)


def _account(now: int) -> tuple[str, list[str], list[Row]]:
    # A sandbox account: ``caja serve --api-key`` finds it and attaches the benchmark key to it.
    columns = _columns(tables.accounts, ("id", "name", "is_sandbox", "created_at"))
    return "accounts", columns, [(ACCOUNT_ID, "Sandbox", True, now - HISTORY_SECONDS)]


def seed_sqlite(path: Path, rows: int, progress: bool = True) -> None:
    # The driver directly, with the tables' column lists: SQLAlchemy's per-row parameter processing
    # would otherwise cost more than SQLite's inserting.
    conn = sqlite3.connect(path, isolation_level=None)
    # Bulk loading only: nothing is served from this file until the load has finished.
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-2000000")
    now = int(time.time())
    started = time.monotonic()
    try:
        if conn.execute("SELECT count(*) FROM accounts").fetchone()[0] > 0:
            raise SystemExit(f"{path} already has accounts: seed into a fresh database")
        _insert_sqlite(conn, *_account(now))
        for table, columns in SEEDED:
            _columns(table, columns)
        with _generator() as pool:
            for stop, batch in pool.imap(_batch, _batches(rows, now)):
                conn.execute("BEGIN")
                for name, columns, records in batch:
                    _insert_sqlite(conn, name, columns, records)
                conn.execute("COMMIT")
                if progress:
                    _progress(stop, rows, started)
        # Back to the journal mode Caja uses (it sets WAL itself too; this keeps the file honest).
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _insert_sqlite(conn: sqlite3.Connection, name: str, columns: list[str], records: list[Any]) -> None:
    marks = ", ".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", records)


Records = tuple[str, list[str], list[Row]]
SEEDED = (
    (tables.customers, CUSTOMER_COLUMNS),
    (tables.payment_sources, SOURCE_COLUMNS),
    (tables.events, EVENT_COLUMNS),
)


def _batch(job: tuple[int, int, int, int]) -> tuple[int, list[Records]]:
    start, stop, total, now = job
    batch = _rows(start, stop, total, ACCOUNT_ID, now)
    return stop, [(t.name, list(c), rows) for (t, c), rows in zip(SEEDED, batch, strict=True)]


def _generator() -> multiprocessing.pool.Pool:
    # Rows are made in worker processes while this one writes the previous batch.
    return multiprocessing.get_context("fork").Pool(max(os.cpu_count() or 1, 1))


async def seed_postgres(database_url: str, rows: int, progress: bool = True) -> None:
    import asyncpg

    url = make_url(database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    now = int(time.time())
    started = time.monotonic()
    try:
        if await conn.fetchval("SELECT count(*) FROM accounts") > 0:
            raise SystemExit("the database already has accounts: seed into a fresh database")
        await _copy(conn, *_account(now))
        for table, columns in SEEDED:
            _columns(table, columns)
        with _generator() as pool:
            for stop, batch in pool.imap(_batch, _batches(rows, now)):
                async with conn.transaction():
                    for name, columns, records in batch:
                        await _copy(conn, name, columns, records)
                if progress:
                    _progress(stop, rows, started)
        # Autovacuum would do this within minutes of such a load; doing it now keeps it out of the run.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def _copy(conn: Any, name: str, columns: list[str], records: list[Any]) -> None:
    await conn.copy_records_to_table(name, records=records, columns=columns)


def _progress(done: int, total: int, started: float) -> None:
    elapsed = time.monotonic() - started
    print(f"  seeded {done:>9,}/{total:,} customers  ({elapsed:5.1f}s)", file=sys.stderr, flush=True)


def seed(database_url: str, rows: int, progress: bool = True) -> float:
    """Migrate a fresh database and seed it; returns the seconds the rows took."""
    migrate(database_url)
    started = time.monotonic()
    if make_url(database_url).get_backend_name() == "sqlite":
        database = make_url(database_url).database
        assert database
        seed_sqlite(Path(database), rows, progress)
    else:
        asyncio.run(seed_postgres(database_url, rows, progress))
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="sqlite:////abs/path.db or postgresql://...")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    took = seed(args.database_url, args.rows)
    print(f"seeded {args.rows:,} customers in {took:.1f}s")


if __name__ == "__main__":
    main()
