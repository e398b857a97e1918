"""Every column that holds a value sealed with the server secret, for re-sealing under a new one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from caja.store.connection import Conn
from caja.store.tables import networks, webhook_keys, webhooks

# (table, key column, sealed column): add a row here when a new column stores a sealed value.
SEALED_COLUMNS: tuple[tuple[sa.Table, str, str], ...] = (
    (webhook_keys, "id", "private_key"),
    (webhooks, "id", "signing_secret"),
    (networks, "id", "secret"),
    (networks, "id", "previous_secret"),
)


class SealedValueRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def sample(self) -> str | None:
        """Any one sealed value, to test a secret on a database that predates the canary."""
        for table, _key, column in SEALED_COLUMNS:
            query = sa.select(table.c[column]).where(table.c[column].isnot(None)).limit(1)
            value = await self._conn.scalar(query)
            if value is not None:
                return str(value)
        return None

    async def reseal(self, open_: Callable[[str], str], seal: Callable[[str], str]) -> int:
        """Open each sealed value (under whichever secret opens it) and seal it again; how many."""
        count = 0
        for table, key, column in SEALED_COLUMNS:
            query = sa.select(table.c[key], table.c[column]).where(table.c[column].isnot(None))
            rows: list[Any] = list((await self._conn.execute(query)).all())
            for row in rows:
                row_key, sealed = row[0], row[1]
                await self._conn.execute(
                    table.update().where(table.c[key] == row_key).values({column: seal(open_(sealed))})
                )
                count += 1
        return count
