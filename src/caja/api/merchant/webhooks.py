"""``/webhooks``: the endpoints an account's events are delivered to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from caja.api.context import MerchantDep, PageDep, list_body
from caja.api.merchant.schemas import WebhookCreateIn, WebhookUpdateIn
from caja.api.responses import ConektaJSON
from caja.domain.representations import webhook_json
from caja.services import webhooks

router = APIRouter(tags=["Webhooks"])
WebhookId = Annotated[str, Path(max_length=64, description="Webhook id")]


@router.post("/webhooks", summary="Register a webhook; it gets a webhook_ping at once")
async def create_webhook(body: WebhookCreateIn, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    webhook = await webhooks.create(c.uow, c.clock, c.secret_box, merchant.tenant, body.to_domain())
    return merchant.respond(webhook_json(webhook, with_secret=True))


@router.get("/webhooks", summary="List webhooks, newest first")
async def list_webhooks(
    request: Request,
    merchant: MerchantDep,
    page_request: PageDep,
    url: Annotated[str | None, Query(max_length=2048, description="Only URLs containing this")] = None,
) -> ConektaJSON:
    c = merchant.container
    page = await webhooks.list_page(c.uow, c.secret_box, merchant.tenant, page_request, url or None)
    data = [webhook_json(w, with_secret=True) for w in page.items]
    return merchant.respond(list_body(request, page, data, {"url": url}))


@router.get("/webhooks/{id}", summary="Show a webhook")
async def get_webhook(id: WebhookId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    webhook = await webhooks.get(c.uow, c.secret_box, merchant.tenant, id)
    return merchant.respond(webhook_json(webhook, with_secret=True))


@router.put("/webhooks/{id}", summary="Change a webhook")
async def update_webhook(id: WebhookId, body: WebhookUpdateIn, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    webhook = await webhooks.update(c.uow, c.clock, c.secret_box, merchant.tenant, id, body.changes())
    return merchant.respond(webhook_json(webhook, with_secret=True))


@router.delete("/webhooks/{id}", summary="Delete a webhook; deliveries not yet started are cancelled")
async def delete_webhook(id: WebhookId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    webhook = await webhooks.delete(c.uow, c.clock, c.secret_box, merchant.tenant, id)
    return merchant.respond(webhook_json(webhook))


@router.post("/webhooks/{id}/test", summary="Send the webhook a webhook_ping")
async def test_webhook(id: WebhookId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    webhook = await webhooks.test(c.uow, c.clock, c.secret_box, merchant.tenant, id)
    return merchant.respond(webhook_json(webhook, with_secret=True))
