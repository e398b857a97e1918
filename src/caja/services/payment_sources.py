"""Issuing, showing, changing and deleting a customer's reusable payment sources."""

from __future__ import annotations

from dataclasses import replace

from caja.domain import ids
from caja.domain.clabe import stp_clabe
from caja.domain.clock import Clock
from caja.domain.customers import Customer
from caja.domain.errors import InternalError, ParameterValidationError, ResourceNotFoundError
from caja.domain.events import new_event
from caja.domain.paging import Page, PageRequest
from caja.domain.payment_sources import (
    NewPaymentSource,
    PaymentSource,
    PaymentSourceStatus,
    PaymentSourceType,
    check_expiry,
)
from caja.domain.references import new_recurrent_cash_reference
from caja.domain.representations import customer_json, payment_source_json
from caja.domain.tenancy import Tenant
from caja.store.payment_sources import to_payment_source
from caja.store.uow import UnitOfWork, UnitOfWorkFactory

# With 10^15 cash bodies a retry is rare and CLABEs never repeat by construction; five failed
# draws in a row mean something is badly wrong, which an operator must hear about.
MAX_DRAWS = 5
CLABE_SERIAL = "clabe_account"
CLABE_KEY = "clabe_permutation"


async def _draw_reference(tx: UnitOfWork, kind: PaymentSourceType, now: int) -> str:
    if kind is PaymentSourceType.CASH_RECURRENT:
        return new_recurrent_cash_reference()
    serial = await tx.sequences.next_value(CLABE_SERIAL)
    return stp_clabe(serial, await tx.sequences.secret(CLABE_KEY, now))


async def issue(
    tx: UnitOfWork,
    tenant: Tenant,
    customer_id: str,
    request: NewPaymentSource,
    now: int,
    base_url: str,
    source_id: str | None = None,
) -> PaymentSource:
    """Insert one new source inside the caller's transaction, with its event."""
    source_id = source_id or ids.new_id(ids.PAYMENT_SOURCE)
    for _ in range(MAX_DRAWS):
        source = PaymentSource(
            id=source_id,
            account_id=tenant.account_id,
            livemode=tenant.livemode,
            customer_id=customer_id,
            type=request.type,
            reference=await _draw_reference(tx, request.type, now),
            expires_at=request.expires_at,
            status=PaymentSourceStatus.ACTIVE,
            created_at=now,
            updated_at=now,
        )
        if await tx.payment_sources.insert_if_unique(source):
            tx.events.add(
                new_event(tenant, "payment_source.created", payment_source_json(source, base_url), now)
            )
            return source
    raise InternalError.general()


def checked(request: NewPaymentSource, now: int, param: str = "expires_at") -> NewPaymentSource:
    return replace(request, expires_at=check_expiry(request.expires_at, now, param))


async def create(
    uow: UnitOfWorkFactory,
    clock: Clock,
    tenant: Tenant,
    customer_id: str,
    request: NewPaymentSource,
    base_url: str,
) -> PaymentSource:
    now = clock.now()
    request = checked(request, now)
    async with uow(write=True) as tx:
        customer = await tx.customers.get(tenant, customer_id, for_update=True)
        if customer is None:
            raise ResourceNotFoundError.entity("Customer", customer_id)
        source = await issue(tx, tenant, customer_id, request, now, base_url)
        # As on POST /customers: a customer without a default source gets its first one.
        if customer.default_payment_source_id is None:
            await _change_default_source(tx, tenant, customer, source.id, now, base_url)
        return source


async def _change_default_source(
    tx: UnitOfWork, tenant: Tenant, customer: Customer, source_id: str | None, now: int, base_url: str
) -> None:
    """Point the customer at another default source, and say so with a ``customer.updated``."""
    await tx.customers.update(
        tenant, customer.id, {"default_payment_source_id": source_id, "updated_at": now}
    )
    sources = await tx.payment_sources.active_for_customers([customer.id])
    after = replace(customer, default_payment_source_id=source_id, updated_at=now).with_sources(
        tuple(sources[customer.id])
    )
    previous = {"default_payment_source_id": customer.default_payment_source_id}
    tx.events.add(new_event(tenant, "customer.updated", customer_json(after, base_url), now, previous))


async def list_page(
    uow: UnitOfWorkFactory, tenant: Tenant, customer_id: str, request: PageRequest
) -> Page[PaymentSource]:
    async with uow() as tx:
        if await tx.customers.get(tenant, customer_id) is None:
            raise ResourceNotFoundError.entity("Customer", customer_id)
        rows = await tx.payment_sources.page(tenant, customer_id, request)
    return Page([to_payment_source(r) for r in rows.rows], rows.has_more, request)


async def get(uow: UnitOfWorkFactory, tenant: Tenant, customer_id: str, source_id: str) -> PaymentSource:
    async with uow() as tx:
        source = await tx.payment_sources.get(tenant, customer_id, source_id)
    if source is None:
        raise ResourceNotFoundError.entity("PaymentSource", source_id)
    return source


async def update(
    uow: UnitOfWorkFactory,
    clock: Clock,
    tenant: Tenant,
    customer_id: str,
    source_id: str,
    expires_at: int | None,
    base_url: str,
) -> PaymentSource:
    """Only the expiry of a reusable source can change; the reference never does."""
    now = clock.now()
    async with uow(write=True) as tx:
        source = await tx.payment_sources.get(tenant, customer_id, source_id, for_update=True)
        if source is None:
            raise ResourceNotFoundError.entity("PaymentSource", source_id)
        if expires_at is None or expires_at == source.expires_at:
            return source
        if expires_at < 0:
            raise ParameterValidationError.invalid("expires_at", "It must be 0 or an epoch in the future.")
        updated = replace(source, expires_at=check_expiry(expires_at, now), updated_at=now)
        await tx.payment_sources.update(source.id, {"expires_at": updated.expires_at, "updated_at": now})
        tx.events.add(
            new_event(
                tenant,
                "payment_source.updated",
                payment_source_json(updated, base_url),
                now,
                {"expires_at": source.expires_at},
            )
        )
    return updated


async def delete(
    uow: UnitOfWorkFactory, clock: Clock, tenant: Tenant, customer_id: str, source_id: str, base_url: str
) -> PaymentSource:
    """Deleting a source retires its reference for good: a store lookup then fails with code 13."""
    now = clock.now()
    async with uow(write=True) as tx:
        source = await tx.payment_sources.get(tenant, customer_id, source_id, for_update=True)
        if source is None:
            raise ResourceNotFoundError.entity("PaymentSource", source_id)
        await tx.payment_sources.update(
            source.id, {"status": PaymentSourceStatus.DELETED.value, "updated_at": now}
        )
        customer = await tx.customers.get(tenant, customer_id, for_update=True)
        if customer is not None and customer.default_payment_source_id == source.id:
            await _change_default_source(tx, tenant, customer, None, now, base_url)
        deleted = replace(source, status=PaymentSourceStatus.DELETED, updated_at=now)
        tx.events.add(
            new_event(tenant, "payment_source.deleted", payment_source_json(deleted, base_url), now)
        )
    return deleted


async def find_by_reference(uow: UnitOfWorkFactory, reference: str) -> PaymentSource | None:
    async with uow() as tx:
        return await tx.payment_sources.find_by_reference(reference)
