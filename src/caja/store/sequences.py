"""Named counters and server-wide secrets, both kept in the database so every process shares them."""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from caja.store.connection import Conn
from caja.store.tables import sequences, server_secrets


def _insert(conn: Conn, table: sa.Table) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


class SequenceRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def next_value(self, name: str) -> int:
        """0, 1, 2, ...: the row lock makes concurrent transactions take distinct values."""
        stmt = _insert(self._conn, sequences).values(name=name, value=0)
        stmt = stmt.on_conflict_do_update(
            index_elements=[sequences.c.name], set_={"value": sequences.c.value + 1}
        ).returning(sequences.c.value)
        value = (await self._conn.execute(stmt)).scalar_one()
        return int(value)

    async def secret(self, name: str, now: int, nbytes: int = 32) -> bytes:
        """The named secret, created on first use; racing creators all end up with the first one."""
        stmt = _insert(self._conn, server_secrets).values(
            name=name, value=secrets.token_hex(nbytes), created_at=now
        )
        await self._conn.execute(stmt.on_conflict_do_nothing())
        value = await self._conn.scalar(
            sa.select(server_secrets.c.value).where(server_secrets.c.name == name)
        )
        return bytes.fromhex(str(value))

    async def stored(self, name: str) -> str | None:
        value = await self._conn.scalar(
            sa.select(server_secrets.c.value).where(server_secrets.c.name == name)
        )
        return None if value is None else str(value)

    async def store_once(self, name: str, value: str, now: int) -> None:
        stmt = _insert(self._conn, server_secrets).values(name=name, value=value, created_at=now)
        await self._conn.execute(stmt.on_conflict_do_nothing())

    async def replace_stored(self, name: str, value: str) -> None:
        await self._conn.execute(
            server_secrets.update().where(server_secrets.c.name == name).values(value=value)
        )
