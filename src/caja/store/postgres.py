"""PostgreSQL through asyncpg: a pooled connection and a transaction per unit of work.

PostgreSQL groups concurrent commits into shared WAL flushes itself, so each unit simply commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from caja.store.connection import AsyncConn, json_dumps


class PostgresBackend:
    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, json_serializer=json_dumps
        )

    @asynccontextmanager
    async def write_unit(self) -> AsyncIterator[AsyncConn]:
        async with self.engine.begin() as conn:
            yield AsyncConn(conn)

    @asynccontextmanager
    async def read_unit(self) -> AsyncIterator[AsyncConn]:
        async with self.engine.connect() as conn:
            # REPEATABLE READ READ ONLY: one consistent snapshot for every query of the unit.
            conn = await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            async with conn.begin():
                yield AsyncConn(conn)

    async def run_sync(self, fn: Any) -> Any:
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn)

    async def dispose(self) -> None:
        await self.engine.dispose()
