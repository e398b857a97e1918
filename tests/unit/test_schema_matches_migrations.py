"""The Alembic migrations build exactly the schema ``store/tables.py`` describes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from caja.store import migrate
from caja.store.db import Database
from caja.store.tables import metadata
from tests.conftest import postgres_url


def _migrated(url: str) -> None:
    async def build() -> None:
        database = Database(url)
        try:
            await migrate.upgrade(database)
        finally:
            await database.dispose()

    asyncio.run(build())


@contextmanager
def _migrated_sqlite(path: Path) -> Iterator[sa.Connection]:
    url = f"sqlite:///{path}"
    _migrated(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def test_no_drift_between_migrations_and_tables(tmp_path: Path) -> None:
    with _migrated_sqlite(tmp_path / "schema.db") as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


# Jobs that name no event or webhook (e-mails, approval calls) stay out of these two indexes:
# a paid payment writes fewer pages. Autogenerate does not compare an index's predicate.
PARTIAL_JOB_INDEXES = {"ix_jobs_event": "event_id IS NOT NULL", "ix_jobs_webhook": "webhook_id IS NOT NULL"}


def test_job_indexes_leave_out_jobs_without_an_event_or_webhook_on_sqlite(tmp_path: Path) -> None:
    with _migrated_sqlite(tmp_path / "partial.db") as conn:
        for name, predicate in PARTIAL_JOB_INDEXES.items():
            sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}).scalar()
            assert sql is not None and sql.endswith(f"WHERE {predicate}"), sql
        # The reads still use them: each asks for ids, which implies NOT NULL.
        for query, index in (
            ("SELECT * FROM jobs WHERE event_id = 'evt_1' ORDER BY seq", "ix_jobs_event"),
            (
                "SELECT * FROM jobs WHERE event_id IN ('evt_1', 'evt_2') AND kind = 'webhook'",
                "ix_jobs_event",
            ),
            ("SELECT * FROM jobs WHERE webhook_id = 'web_1' AND status = 'pending'", "ix_jobs_webhook"),
        ):
            plan = " ".join(str(r[-1]) for r in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {query}")))
            assert f"USING INDEX {index}" in plan, (query, plan)


def test_job_indexes_leave_out_jobs_without_an_event_or_webhook_on_postgresql() -> None:
    url = postgres_url()
    _migrated(url)

    async def predicates() -> dict[str, str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs' AND indexname = ANY($1)",
                list(PARTIAL_JOB_INDEXES),
            )
        finally:
            await conn.close()
        return {r["indexname"]: r["indexdef"] for r in rows}

    found = asyncio.run(predicates())
    assert set(found) == set(PARTIAL_JOB_INDEXES)
    for name, predicate in PARTIAL_JOB_INDEXES.items():
        assert found[name].endswith(f"WHERE ({predicate})"), found[name]
