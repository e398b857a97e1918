"""The Alembic migrations build exactly the schema ``store/tables.py`` describes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from caja.store import migrate
from caja.store.db import Database
from caja.store.tables import metadata


def test_no_drift_between_migrations_and_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"

    async def build() -> None:
        database = Database(url)
        try:
            await migrate.upgrade(database)
        finally:
            await database.dispose()

    asyncio.run(build())
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []
