"""Creating, reading, changing, listing and deleting customers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from caja.domain import ids
from caja.domain.clock import Clock
from caja.domain.customers import Customer, NewCustomer, check_changes, check_metadata
from caja.domain.errors import ParameterValidationError, ResourceNotFoundError
from caja.domain.events import new_event
from caja.domain.paging import Page, PageRequest
from caja.domain.representations import customer_json
from caja.domain.tenancy import Tenant
from caja.services import payment_sources
from caja.store.customers import to_customer
from caja.store.uow import UnitOfWork, UnitOfWorkFactory


async def create(
    uow: UnitOfWorkFactory, clock: Clock, tenant: Tenant, request: NewCustomer, base_url: str
) -> Customer:
    now = clock.now()
    check_metadata(request.metadata)
    sources = [
        payment_sources.checked(s, now, f"payment_sources[{i}].expires_at")
        for i, s in enumerate(request.payment_sources)
    ]
    source_ids = [ids.new_id(ids.PAYMENT_SOURCE) for _ in sources]
    customer = Customer(
        id=ids.new_ordered_id(ids.CUSTOMER),
        account_id=tenant.account_id,
        livemode=tenant.livemode,
        name=request.name,
        email=request.email,
        phone=request.phone,
        corporate=request.corporate,
        custom_reference=request.custom_reference,
        date_of_birth=request.date_of_birth,
        national_id=request.national_id,
        metadata=request.metadata,
        antifraud_info=request.antifraud_info,
        default_payment_source_id=_default_source_id(request.default_payment_source_id, source_ids),
        created_at=now,
        updated_at=now,
    )
    async with uow(write=True) as tx:
        await tx.customers.insert(customer)
        issued = [
            await payment_sources.issue(tx, tenant, customer.id, s, now, base_url, source_id)
            for s, source_id in zip(sources, source_ids, strict=True)
        ]
        customer = customer.with_sources(tuple(issued))
        tx.events.add(new_event(tenant, "customer.created", customer_json(customer, base_url), now))
    return customer


def _default_source_id(requested: str | None, source_ids: list[str]) -> str | None:
    """The first new source is the default unless the request names one, which must be among them.

    A new customer's sources get their ids here, so naming one is only possible in a later PUT;
    an id given at creation is therefore always rejected rather than silently dropped.
    """
    if requested is not None:
        raise ParameterValidationError.invalid(
            "default_payment_source_id", "It must name one of this customer's payment sources."
        )
    return source_ids[0] if source_ids else None


async def _load(tx: UnitOfWork, tenant: Tenant, customer_id: str, *, for_update: bool = False) -> Customer:
    customer = await tx.customers.get(tenant, customer_id, for_update=for_update)
    if customer is None:
        raise ResourceNotFoundError.entity("Customer", customer_id)
    sources = await tx.payment_sources.active_for_customers([customer.id])
    return customer.with_sources(tuple(sources[customer.id]))


async def get(uow: UnitOfWorkFactory, tenant: Tenant, customer_id: str) -> Customer:
    async with uow(single_statement=True) as tx:
        customer = await tx.customers.get_with_sources(tenant, customer_id)
    if customer is None:
        raise ResourceNotFoundError.entity("Customer", customer_id)
    return customer


async def update(
    uow: UnitOfWorkFactory,
    clock: Clock,
    tenant: Tenant,
    customer_id: str,
    changes: dict[str, Any],
    base_url: str,
) -> Customer:
    check_changes(changes)
    now = clock.now()
    async with uow(write=True) as tx:
        before = await _load(tx, tenant, customer_id, for_update=True)
        default_id = changes.get("default_payment_source_id")
        if default_id is not None and all(s.id != default_id for s in before.payment_sources):
            raise ParameterValidationError.invalid(
                "default_payment_source_id", "It must name one of this customer's payment sources."
            )
        if "corporate" in changes and changes["corporate"] is None:
            changes = {**changes, "corporate": False}
        if "custom_reference" in changes and changes["custom_reference"] is None:
            changes = {**changes, "custom_reference": ""}
        if "metadata" in changes and changes["metadata"] is None:
            changes = {**changes, "metadata": {}}
        previous = {
            name: getattr(before, name) for name, value in changes.items() if getattr(before, name) != value
        }
        if not previous:
            return before
        after = replace(before, **changes, updated_at=now)
        await tx.customers.update(tenant, customer_id, {**changes, "updated_at": now})
        tx.events.add(new_event(tenant, "customer.updated", customer_json(after, base_url), now, previous))
    return after


async def delete(
    uow: UnitOfWorkFactory, clock: Clock, tenant: Tenant, customer_id: str, base_url: str
) -> Customer:
    """A deleted customer is gone from the API; its references stop being payable (code 14)."""
    now = clock.now()
    async with uow(write=True) as tx:
        customer = await _load(tx, tenant, customer_id, for_update=True)
        await tx.customers.update(tenant, customer_id, {"deleted_at": now, "updated_at": now})
        await tx.payment_sources.delete_all_of_customer(customer_id, now)
        deleted = replace(customer, deleted_at=now, updated_at=now)
        tx.events.add(new_event(tenant, "customer.deleted", customer_json(deleted, base_url), now))
    return deleted


async def list_page(uow: UnitOfWorkFactory, tenant: Tenant, request: PageRequest) -> Page[Customer]:
    async with uow() as tx:
        rows = await tx.customers.page(tenant, request)
        found = [to_customer(r) for r in rows.rows]
        sources = await tx.payment_sources.active_for_customers(c.id for c in found)
    return Page([c.with_sources(tuple(sources[c.id])) for c in found], rows.has_more, request)
