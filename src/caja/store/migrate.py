"""Apply Alembic migrations and tell whether the schema is current (for /ready)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from caja.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


async def upgrade(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(_config(sync_conn), "head"))


async def current_revision(database: Database) -> str | None:
    async with database.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def autogenerate(database: Database, message: str) -> None:
    """For developers adding a migration: diff the tables module against the database."""
    async with database.engine.begin() as conn:
        await conn.run_sync(
            lambda sync_conn: command.revision(_config(sync_conn), message=message, autogenerate=True)
        )
