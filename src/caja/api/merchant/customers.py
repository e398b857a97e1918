"""``/customers``: create, show, change, list and delete customers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from caja.api.context import MerchantDep, PageDep, body_of, list_body
from caja.api.merchant.schemas import CustomerCreateIn, CustomerUpdateIn
from caja.api.openapi import request_body
from caja.api.responses import ConektaJSON
from caja.domain.representations import customer_json
from caja.services import customers

router = APIRouter(tags=["Customers"])
CustomerId = Annotated[str, Path(max_length=64, description="Customer id (cus_...)")]


@router.post(
    "/customers",
    summary="Create a customer, optionally with reusable payment sources",
    openapi_extra=request_body(CustomerCreateIn),
)
async def create_customer(request: Request, merchant: MerchantDep) -> ConektaJSON:
    body = await body_of(request, CustomerCreateIn)
    c = merchant.container
    customer = await customers.create(c.uow, c.clock, merchant.tenant, body.to_domain(), c.base_url)
    return merchant.respond(customer_json(customer, c.base_url))


@router.get("/customers", summary="List customers, newest first")
async def list_customers(request: Request, merchant: MerchantDep, page_request: PageDep) -> ConektaJSON:
    c = merchant.container
    page = await customers.list_page(c.uow, merchant.tenant, page_request)
    return merchant.respond(list_body(request, page, [customer_json(x, c.base_url) for x in page.items]))


@router.get("/customers/{id}", summary="Show a customer")
async def get_customer(id: CustomerId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    return merchant.respond(customer_json(await customers.get(c.uow, merchant.tenant, id), c.base_url))


@router.put("/customers/{id}", summary="Change a customer")
async def update_customer(id: CustomerId, body: CustomerUpdateIn, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    customer = await customers.update(c.uow, c.clock, merchant.tenant, id, body.changes(), c.base_url)
    return merchant.respond(customer_json(customer, c.base_url))


@router.delete("/customers/{id}", summary="Delete a customer and retire its references")
async def delete_customer(id: CustomerId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    customer = await customers.delete(c.uow, c.clock, merchant.tenant, id, c.base_url)
    return merchant.respond(customer_json(customer, c.base_url))
