"""What the sandbox dashboard shows: an event with every delivery attempt of each of its deliveries."""

from __future__ import annotations

from dataclasses import dataclass

from caja.domain.errors import ResourceNotFoundError
from caja.domain.events import EventDetail, WebhookLog
from caja.domain.jobs import Attempt
from caja.domain.tenancy import Tenant
from caja.store.uow import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of the event to one webhook, with each attempt as sent and as answered."""

    log: WebhookLog
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True, slots=True)
class EventDeliveries:
    detail: EventDetail
    deliveries: tuple[Delivery, ...]

    @property
    def pending(self) -> bool:
        return any(d.log.status in {"pending", "running"} for d in self.deliveries)


async def event_deliveries(uow: UnitOfWorkFactory, tenant: Tenant, event_id: str) -> EventDeliveries:
    async with uow() as tx:
        event = await tx.events.get(tenant, event_id)
        if event is None:
            raise ResourceNotFoundError.entity("Event", event_id)
        logs = (await tx.events.logs([event.id]))[event.id]
        deliveries = [Delivery(log, tuple(await tx.jobs.attempts(log.id))) for log in logs]
    return EventDeliveries(EventDetail(event, tuple(logs)), tuple(deliveries))
