"""``/events``: the account's event log, each event with its webhook deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from caja.api.context import MerchantDep, PageDep, list_body
from caja.api.merchant.schemas import EventResendIn
from caja.api.responses import ConektaJSON
from caja.domain.representations import event_json, webhook_log_json
from caja.services import events

router = APIRouter(tags=["Events"])
EventId = Annotated[str, Path(max_length=64, description="Event id")]


@router.get("/events", summary="List events, newest first")
async def list_events(
    request: Request,
    merchant: MerchantDep,
    page_request: PageDep,
    type: Annotated[str | None, Query(max_length=80, description="Only events of this type")] = None,
) -> ConektaJSON:
    c = merchant.container
    page = await events.list_page(c.uow, merchant.tenant, page_request, type or None)
    return merchant.respond(list_body(request, page, [event_json(e) for e in page.items], {"type": type}))


@router.get("/events/{id}", summary="Show an event and its webhook deliveries")
async def get_event(id: EventId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    return merchant.respond(event_json(await events.get(c.uow, merchant.tenant, id)))


@router.post("/events/{event_id}/resend", summary="Deliver an event again to some of the account's webhooks")
async def resend_event(
    event_id: Annotated[str, Path(max_length=64, description="Event id")],
    body: EventResendIn,
    merchant: MerchantDep,
) -> ConektaJSON:
    """Answers Conekta's ``events_resend_response``: the new delivery to the first webhook named."""
    c = merchant.container
    logs = await events.resend(c.uow, c.clock, merchant.tenant, event_id, body.webhooks_ids)
    return merchant.respond(webhook_log_json(logs[0]))
