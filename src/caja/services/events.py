"""Reading the event log with its deliveries, and sending an event again."""

from __future__ import annotations

from caja.domain.clock import Clock
from caja.domain.errors import ParameterValidationError, ResourceNotFoundError
from caja.domain.events import EventDetail, WebhookLog
from caja.domain.paging import Page, PageRequest
from caja.domain.tenancy import Tenant
from caja.store.events import to_event
from caja.store.uow import UnitOfWorkFactory


async def get(uow: UnitOfWorkFactory, tenant: Tenant, event_id: str) -> EventDetail:
    async with uow() as tx:
        event = await tx.events.get(tenant, event_id)
        if event is None:
            raise ResourceNotFoundError.entity("Event", event_id)
        logs = await tx.events.logs([event.id])
    return EventDetail(event, tuple(logs[event.id]))


async def list_page(
    uow: UnitOfWorkFactory, tenant: Tenant, request: PageRequest, event_type: str | None = None
) -> Page[EventDetail]:
    async with uow() as tx:
        rows = await tx.events.page(tenant, request, event_type)
        found = [to_event(r) for r in rows.rows]
        logs = await tx.events.logs([e.id for e in found])
    return Page([EventDetail(e, tuple(logs[e.id])) for e in found], rows.has_more, request)


async def resend(
    uow: UnitOfWorkFactory, clock: Clock, tenant: Tenant, event_id: str, webhook_ids: list[str]
) -> list[WebhookLog]:
    """Deliver the event again to each named webhook of the tenant, as new deliveries due now.

    Every id must name one of the tenant's webhooks that receives events (422 on
    ``webhooks_ids[i]`` otherwise): not synchronous (those receive only approval calls), active
    and not disabled (the dispatcher would not deliver).
    """
    wanted = list(dict.fromkeys(webhook_ids))
    now_ms = clock.now_ms()
    async with uow(write=True) as tx:
        event = await tx.events.get(tenant, event_id)
        if event is None:
            raise ResourceNotFoundError.entity("Event", event_id)
        targets = await tx.webhooks.targets(tenant, wanted)
        for index, webhook_id in enumerate(webhook_ids):
            target = targets.get(webhook_id)
            if target is None:
                raise ParameterValidationError.invalid(
                    f"webhooks_ids[{index}]", f"No webhook {webhook_id[:40]!r} in this account and mode."
                )
            if target.synchronous:
                raise ParameterValidationError.invalid(
                    f"webhooks_ids[{index}]", "A synchronous webhook receives only approval calls."
                )
            if not target.receiving:
                raise ParameterValidationError.invalid(
                    f"webhooks_ids[{index}]",
                    'The webhook is inactive or disabled: re-enable it with PUT {"active": true} first.',
                )
        job_ids = await tx.events.enqueue_deliveries(
            event, {webhook_id: targets[webhook_id].url for webhook_id in wanted}, now_ms
        )
    return [
        WebhookLog(
            id=job_id,
            event_id=event.id,
            webhook_id=webhook_id,
            url=targets[webhook_id].url,
            status="pending",
            failed_attempts=0,
            last_http_status=None,
            last_attempted_at=None,
            response_body=None,
        )
        for job_id, webhook_id in zip(job_ids, wanted, strict=True)
    ]
