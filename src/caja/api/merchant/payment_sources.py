"""``/customers/{id}/payment_sources``: a customer's reusable cash references and CLABEs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from caja.api.context import MerchantDep, PageDep, list_body
from caja.api.merchant.schemas import PaymentSourceIn, PaymentSourceUpdateIn
from caja.api.responses import ConektaJSON
from caja.domain.representations import payment_source_json
from caja.services import payment_sources

router = APIRouter(tags=["Payment sources"])
CustomerId = Annotated[str, Path(max_length=64, description="Customer id (cus_...)")]
SourceId = Annotated[str, Path(max_length=64, description="Payment source id (off_ref_...)")]


@router.post("/customers/{id}/payment_sources", summary="Issue a reusable cash reference or CLABE")
async def create_payment_source(id: CustomerId, body: PaymentSourceIn, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    source = await payment_sources.create(c.uow, c.clock, merchant.tenant, id, body.to_domain(), c.base_url)
    return merchant.respond(payment_source_json(source, c.base_url))


@router.get("/customers/{id}/payment_sources", summary="List a customer's payment sources")
async def list_payment_sources(
    request: Request, id: CustomerId, merchant: MerchantDep, page_request: PageDep
) -> ConektaJSON:
    c = merchant.container
    page = await payment_sources.list_page(c.uow, merchant.tenant, id, page_request)
    data = [payment_source_json(s, c.base_url) for s in page.items]
    return merchant.respond(list_body(request, page, data))


@router.get("/customers/{id}/payment_sources/{source_id}", summary="Show one payment source")
async def get_payment_source(id: CustomerId, source_id: SourceId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    source = await payment_sources.get(c.uow, merchant.tenant, id, source_id)
    return merchant.respond(payment_source_json(source, c.base_url))


@router.put("/customers/{id}/payment_sources/{source_id}", summary="Change a payment source's expiry")
async def update_payment_source(
    id: CustomerId, source_id: SourceId, body: PaymentSourceUpdateIn, merchant: MerchantDep
) -> ConektaJSON:
    c = merchant.container
    source = await payment_sources.update(
        c.uow, c.clock, merchant.tenant, id, source_id, body.expires_at, c.base_url
    )
    return merchant.respond(payment_source_json(source, c.base_url))


@router.delete("/customers/{id}/payment_sources/{source_id}", summary="Retire a payment source")
async def delete_payment_source(id: CustomerId, source_id: SourceId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    source = await payment_sources.delete(c.uow, c.clock, merchant.tenant, id, source_id, c.base_url)
    return merchant.respond(payment_source_json(source, c.base_url))
