"""The database: URL normalisation and the backend (SQLite or PostgreSQL) behind units of work."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from caja.store.connection import Conn
from caja.store.postgres import PostgresBackend
from caja.store.sqlite import SQLiteBackend


def normalise_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs and pick Caja's drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    elif backend in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One backend, chosen by the URL; everything above it sees only units of work."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._backend: SQLiteBackend | PostgresBackend = (
            SQLiteBackend(self.url) if self.is_sqlite else PostgresBackend(self.url, pool_size)
        )

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    def unit(
        self,
        *,
        write: bool,
        single_statement: bool = False,
        snapshot: bool = True,
        durable: bool = True,
        prompt: bool = False,
    ) -> AbstractAsyncContextManager[Conn]:
        """A transaction; a read or write of ``single_statement``, or a read that needs no common
        ``snapshot``, may run without one where that is cheaper (a statement is atomic by itself).
        A write that need not be ``durable`` may return before it is on disk where syncing is
        Caja's own work (SQLite; PostgreSQL groups the flushes of concurrent commits itself, and
        every commit there waits for its flush); one that is also ``prompt`` has a caller waiting
        and never waits for others to share it."""
        backend = self._backend
        if write:
            return backend.write_unit(durable=durable, prompt=prompt, single_statement=single_statement)
        return backend.read_unit(single_statement=single_statement, snapshot=snapshot)

    async def run_sync(self, fn: Any) -> Any:
        """Run ``fn(sync_connection)`` in one committed transaction (migrations, bulk tools)."""
        return await self._backend.run_sync(fn)

    async def ping(self) -> None:
        async with self.unit(write=False) as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self._backend.dispose()
