"""The event log, written in the same transaction as the change it describes (the outbox)."""

from __future__ import annotations

from typing import Any

from caja.domain.events import Event
from caja.store.connection import Conn
from caja.store.tables import events

_INSERT = events.insert()


class EventRepository:
    """Collects a unit's events and writes them in one statement just before it commits."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._pending: list[dict[str, Any]] = []

    def add(self, event: Event) -> None:
        self._pending.append(
            {
                "id": event.id,
                "account_id": event.tenant.account_id,
                "livemode": event.tenant.livemode,
                "type": event.type,
                "data": {"object": event.object, "previous_attributes": event.previous_attributes},
                "created_at": event.created_at,
            }
        )

    async def flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            await self._conn.execute(_INSERT, rows)
