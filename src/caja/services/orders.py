"""Showing and listing the orders and charges that payments created."""

from __future__ import annotations

from caja.domain.errors import ResourceNotFoundError
from caja.domain.orders import Charge, Order
from caja.domain.paging import Page, PageRequest
from caja.domain.tenancy import Tenant
from caja.store.orders import OrderFilters, to_charge
from caja.store.uow import UnitOfWorkFactory


async def get(uow: UnitOfWorkFactory, tenant: Tenant, order_id: str) -> Order:
    async with uow() as tx:
        order = await tx.orders.get(tenant, order_id)
    if order is None:
        raise ResourceNotFoundError.entity("Order", order_id)
    return order


async def list_page(
    uow: UnitOfWorkFactory, tenant: Tenant, request: PageRequest, filters: OrderFilters
) -> Page[Order]:
    async with uow() as tx:
        rows = await tx.orders.page_orders(tenant, request, filters)
        found = await tx.orders.with_charges(rows.rows)
    return Page(found, rows.has_more, request)


async def list_charges(uow: UnitOfWorkFactory, tenant: Tenant, request: PageRequest) -> Page[Charge]:
    async with uow() as tx:
        rows = await tx.orders.page_charges(tenant, request)
    return Page([to_charge(r) for r in rows.rows], rows.has_more, request)


async def get_charge(uow: UnitOfWorkFactory, tenant: Tenant, charge_id: str) -> Charge:
    async with uow() as tx:
        charge = await tx.orders.get_charge(tenant, charge_id)
    if charge is None:
        raise ResourceNotFoundError.entity("Charge", charge_id)
    return charge
