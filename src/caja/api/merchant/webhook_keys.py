"""``/webhook_keys``: the RSA keys whose private halves sign deliveries (the ``Digest`` header)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from caja.api.context import MerchantDep, PageDep, list_body
from caja.api.merchant.schemas import WebhookKeyCreateIn, WebhookKeyUpdateIn
from caja.api.responses import ConektaJSON
from caja.domain.representations import webhook_key_json
from caja.services import webhook_keys

router = APIRouter(tags=["Webhook keys"])
KeyId = Annotated[str, Path(max_length=64, description="Webhook key id")]


@router.post("/webhook_keys", summary="Create a webhook key; its public key verifies delivery signatures")
async def create_webhook_key(merchant: MerchantDep, body: WebhookKeyCreateIn | None = None) -> ConektaJSON:
    c = merchant.container
    active = body.active if body is not None else True
    key = await webhook_keys.create(c.uow, c.clock, c.secret_box, merchant.tenant, active)
    return merchant.respond(webhook_key_json(key))


@router.get("/webhook_keys", summary="List webhook keys, newest first")
async def list_webhook_keys(request: Request, merchant: MerchantDep, page_request: PageDep) -> ConektaJSON:
    c = merchant.container
    page = await webhook_keys.list_page(c.uow, merchant.tenant, page_request)
    return merchant.respond(list_body(request, page, [webhook_key_json(k) for k in page.items]))


@router.get("/webhook_keys/{id}", summary="Show a webhook key")
async def get_webhook_key(id: KeyId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    return merchant.respond(webhook_key_json(await webhook_keys.get(c.uow, merchant.tenant, id)))


@router.put("/webhook_keys/{id}", summary="Turn a webhook key on or off")
async def update_webhook_key(
    id: KeyId, merchant: MerchantDep, body: WebhookKeyUpdateIn | None = None
) -> ConektaJSON:
    c = merchant.container
    active = body.active if body is not None else None
    key = await webhook_keys.update(c.uow, c.clock, merchant.tenant, id, active)
    return merchant.respond(webhook_key_json(key))


@router.delete("/webhook_keys/{id}", summary="Delete a webhook key")
async def delete_webhook_key(id: KeyId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    return merchant.respond(webhook_key_json(await webhook_keys.delete(c.uow, c.clock, merchant.tenant, id)))
