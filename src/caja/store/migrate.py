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
    await database.run_sync(lambda sync_conn: command.upgrade(_config(sync_conn), "head"))


async def current_revision(database: Database) -> str | None:
    revision = await database.run_sync(
        lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
    )
    return None if revision is None else str(revision)


async def autogenerate(database: Database, message: str) -> None:
    """For developers adding a migration: diff the tables module against the database."""
    await database.run_sync(
        lambda sync_conn: command.revision(_config(sync_conn), message=message, autogenerate=True)
    )
