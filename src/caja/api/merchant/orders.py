"""``/orders`` and ``/charges``: what store payments created, listed with the spec's filters."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request

from caja.api.context import MerchantDep, PageDep, list_body
from caja.api.responses import ConektaJSON
from caja.domain.representations import charge_json, order_json
from caja.services import orders
from caja.store.orders import OrderFilters

router = APIRouter(tags=["Orders"])
OrderId = Annotated[str, Path(max_length=64, description="Order id (ord_...)")]
MAX_EPOCH = 4_102_444_800  # 2100-01-01
EpochQuery = Annotated[int | None, Query(ge=0, le=MAX_EPOCH)]
_T = TypeVar("_T")
StatusQuery = Annotated[str | None, Query(max_length=40)]


def _epoch(alias: str, *, older: bool = False) -> Any:
    """An epoch filter under its name in Conekta's spec, the one the official SDK sends
    (``created_at.gte``); ``older``: under the name Caja documented before (``created_at_gte``),
    still read but no longer shown."""
    return Query(alias=alias, ge=0, le=MAX_EPOCH, include_in_schema=not older)


def _status(alias: str, *, older: bool = False) -> Any:
    return Query(alias=alias, max_length=40, include_in_schema=not older)


@router.get("/orders", summary="List orders, newest first")
async def list_orders(
    request: Request,
    merchant: MerchantDep,
    page_request: PageDep,
    payment_status: StatusQuery = None,
    last_payment_info_status: Annotated[str | None, _status("last_payment_info.status")] = None,
    created_at: EpochQuery = None,
    created_at_gte: Annotated[int | None, _epoch("created_at.gte")] = None,
    created_at_lte: Annotated[int | None, _epoch("created_at.lte")] = None,
    updated_at_gte: Annotated[int | None, _epoch("updated_at.gte")] = None,
    updated_at_lte: Annotated[int | None, _epoch("updated_at.lte")] = None,
    older_last_payment_info_status: Annotated[
        str | None, _status("last_payment_info_status", older=True)
    ] = None,
    older_created_at_gte: Annotated[int | None, _epoch("created_at_gte", older=True)] = None,
    older_created_at_lte: Annotated[int | None, _epoch("created_at_lte", older=True)] = None,
    older_updated_at_gte: Annotated[int | None, _epoch("updated_at_gte", older=True)] = None,
    older_updated_at_lte: Annotated[int | None, _epoch("updated_at_lte", older=True)] = None,
) -> ConektaJSON:
    filters = OrderFilters(
        payment_status=payment_status,
        last_payment_info_status=_either(last_payment_info_status, older_last_payment_info_status),
        created_at=created_at,
        created_at_gte=_either(created_at_gte, older_created_at_gte),
        created_at_lte=_either(created_at_lte, older_created_at_lte),
        updated_at_gte=_either(updated_at_gte, older_updated_at_gte),
        updated_at_lte=_either(updated_at_lte, older_updated_at_lte),
    )
    c = merchant.container
    page = await orders.list_page(c.uow, merchant.tenant, page_request, filters)
    carried = {
        name: None if value is None else str(value)
        for name, value in (
            ("payment_status", filters.payment_status),
            ("last_payment_info.status", filters.last_payment_info_status),
            ("created_at", filters.created_at),
            ("created_at.gte", filters.created_at_gte),
            ("created_at.lte", filters.created_at_lte),
            ("updated_at.gte", filters.updated_at_gte),
            ("updated_at.lte", filters.updated_at_lte),
        )
    }
    data = [order_json(o, c.base_url) for o in page.items]
    return merchant.respond(list_body(request, page, data, carried))


def _either(spec_named: _T | None, older: _T | None) -> _T | None:
    return spec_named if spec_named is not None else older


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
