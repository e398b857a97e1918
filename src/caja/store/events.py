"""The event log, written in the same transaction as the change it describes (the outbox)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from caja.domain.events import Event
from caja.store.tables import events


class EventRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, event: Event) -> None:
        data: dict[str, Any] = {"object": event.object, "previous_attributes": event.previous_attributes}
        await self._conn.execute(
            events.insert().values(
                id=event.id,
                account_id=event.tenant.account_id,
                livemode=event.tenant.livemode,
                type=event.type,
                data=data,
                created_at=event.created_at,
            )
        )
