"""``/orders`` and ``/charges``: what store payments created, listed with the spec's filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from caja.api.context import MerchantDep, PageDep, list_body
from caja.api.responses import ConektaJSON
from caja.domain.representations import charge_json, order_json
from caja.services import orders
from caja.store.orders import OrderFilters

router = APIRouter(tags=["Orders"])
OrderId = Annotated[str, Path(max_length=64, description="Order id (ord_...)")]
EpochQuery = Annotated[int | None, Query(ge=0, le=4_102_444_800)]
StatusQuery = Annotated[str | None, Query(max_length=40)]


@router.get("/orders", summary="List orders, newest first")
async def list_orders(
    request: Request,
    merchant: MerchantDep,
    page_request: PageDep,
    payment_status: StatusQuery = None,
    last_payment_info_status: StatusQuery = None,
    created_at: EpochQuery = None,
    created_at_gte: EpochQuery = None,
    created_at_lte: EpochQuery = None,
    updated_at_gte: EpochQuery = None,
    updated_at_lte: EpochQuery = None,
) -> ConektaJSON:
    filters = OrderFilters(
        payment_status=payment_status,
        last_payment_info_status=last_payment_info_status,
        created_at=created_at,
        created_at_gte=created_at_gte,
        created_at_lte=created_at_lte,
        updated_at_gte=updated_at_gte,
        updated_at_lte=updated_at_lte,
    )
    c = merchant.container
    page = await orders.list_page(c.uow, merchant.tenant, page_request, filters)
    carried = {
        name: None if value is None else str(value)
        for name, value in (
            ("payment_status", payment_status),
            ("last_payment_info_status", last_payment_info_status),
            ("created_at", created_at),
            ("created_at_gte", created_at_gte),
            ("created_at_lte", created_at_lte),
            ("updated_at_gte", updated_at_gte),
            ("updated_at_lte", updated_at_lte),
        )
    }
    data = [order_json(o, c.base_url) for o in page.items]
    return merchant.respond(list_body(request, page, data, carried))


@router.get("/orders/{id}", summary="Show an order with its charges")
async def get_order(id: OrderId, merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    return merchant.respond(order_json(await orders.get(c.uow, merchant.tenant, id), c.base_url))


@router.get("/charges", summary="List charges, newest first", tags=["Charges"])
async def list_charges(request: Request, merchant: MerchantDep, page_request: PageDep) -> ConektaJSON:
    c = merchant.container
    page = await orders.list_charges(c.uow, merchant.tenant, page_request)
    return merchant.respond(list_body(request, page, [charge_json(x, c.base_url) for x in page.items]))


@router.get("/charges/{id}", summary="Show a charge", tags=["Charges"])
async def get_charge(id: Annotated[str, Path(max_length=64)], merchant: MerchantDep) -> ConektaJSON:
    c = merchant.container
    return merchant.respond(charge_json(await orders.get_charge(c.uow, merchant.tenant, id), c.base_url))
