"""Customer rows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from caja.domain.customers import Customer
from caja.domain.paging import PageRequest
from caja.domain.payment_sources import PaymentSource, PaymentSourceStatus
from caja.domain.tenancy import Tenant
from caja.store.connection import Conn
from caja.store.pagination import RowPage, fetch_page
from caja.store.payment_sources import to_payment_source
from caja.store.prepared import Prepared, named_row
from caja.store.tables import customers, payment_sources


def _tenant_filter(tenant: Tenant) -> sa.ColumnElement[bool]:
    return sa.and_(customers.c.account_id == tenant.account_id, customers.c.livemode.is_(tenant.livemode))


# Built once: constructing statements per call costs more than running them on SQLite.
_COLUMNS = [c.key for c in customers.columns if c.key != "seq"]
_INSERT = Prepared(customers.insert(), keys=_COLUMNS)
_GET_QUERY = sa.select(customers).where(
    customers.c.id == sa.bindparam("id"),
    customers.c.account_id == sa.bindparam("account_id"),
    customers.c.livemode == sa.bindparam("livemode"),
    customers.c.deleted_at.is_(None),
)
_GET = Prepared(_GET_QUERY)
# By id alone, deleted or not: a store scanning a reference learns whether its customer is gone.
_GET_ANY = Prepared(sa.select(customers).where(customers.c.id == sa.bindparam("id")))
_GET_FOR_UPDATE = Prepared(_GET_QUERY.with_for_update())
# The customer and its active payment sources in one statement (one row per source, the
# customer's columns repeated; none: one row of NULL source columns), so a read needs no snapshot.
_SOURCE_LABELS = [column.label(f"source_{column.key}") for column in payment_sources.columns]
_CUSTOMER_WIDTH = len(customers.columns)
_SourceRow = named_row([column.key for column in payment_sources.columns])
_GET_WITH_SOURCES = Prepared(
    _GET_QUERY.add_columns(*_SOURCE_LABELS)
    .select_from(
        customers.outerjoin(
            payment_sources,
            sa.and_(
                payment_sources.c.customer_id == customers.c.id,
                payment_sources.c.status == PaymentSourceStatus.ACTIVE.value,
            ),
        )
    )
    .order_by(payment_sources.c.seq)
)


class CustomerRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def insert(self, customer: Customer) -> None:
        await self._conn.run(_INSERT, _columns(customer))

    async def get(self, tenant: Tenant, customer_id: str, *, for_update: bool = False) -> Customer | None:
        params = {"id": customer_id, "account_id": tenant.account_id, "livemode": tenant.livemode}
        row = (await self._conn.run(_GET_FOR_UPDATE if for_update else _GET, params)).first()
        return to_customer(row) if row else None

    async def get_with_sources(self, tenant: Tenant, customer_id: str) -> Customer | None:
        """The customer with its active payment sources, oldest first, in one statement."""
        params = {"id": customer_id, "account_id": tenant.account_id, "livemode": tenant.livemode}
        rows = (await self._conn.run(_GET_WITH_SOURCES, params)).all()
        if not rows:
            return None
        sources: list[PaymentSource] = [
            to_payment_source(_SourceRow._make(row[_CUSTOMER_WIDTH:]))
            for row in rows
            if row[_CUSTOMER_WIDTH] is not None
        ]
        return to_customer(rows[0]).with_sources(tuple(sources))

    async def get_any(self, customer_id: str) -> Customer | None:
        row = (await self._conn.run(_GET_ANY, {"id": customer_id})).first()
        return to_customer(row) if row else None

    async def update(self, tenant: Tenant, customer_id: str, values: dict[str, Any]) -> None:
        await self._conn.execute(
            customers.update().where(_tenant_filter(tenant), customers.c.id == customer_id).values(**values)
        )

    async def page(self, tenant: Tenant, request: PageRequest) -> RowPage:
        where = sa.and_(_tenant_filter(tenant), customers.c.deleted_at.is_(None))
        if request.search:
            pattern = f"%{_escape_like(request.search)}%"
            where = sa.and_(
                where,
                sa.or_(
                    customers.c.id == request.search,
                    customers.c.name.ilike(pattern, escape="\\"),
                    customers.c.email.ilike(pattern, escape="\\"),
                    customers.c.phone.ilike(pattern, escape="\\"),
                    customers.c.custom_reference.ilike(pattern, escape="\\"),
                ),
            )
        return await fetch_page(self._conn, customers, where, request, cursor_scope=_tenant_filter(tenant))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _columns(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "account_id": customer.account_id,
        "livemode": customer.livemode,
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "corporate": customer.corporate,
        "custom_reference": customer.custom_reference,
        "date_of_birth": customer.date_of_birth,
        "national_id": customer.national_id,
        "metadata": customer.metadata,
        "antifraud_info": customer.antifraud_info,
        "default_payment_source_id": customer.default_payment_source_id,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "deleted_at": customer.deleted_at,
    }


def to_customer(row: sa.Row[Any]) -> Customer:
    return Customer(
        id=row.id,
        account_id=row.account_id,
        livemode=bool(row.livemode),
        name=row.name,
        email=row.email,
        phone=row.phone,
        corporate=bool(row.corporate),
        custom_reference=row.custom_reference,
        date_of_birth=row.date_of_birth,
        national_id=row.national_id,
        metadata=row.metadata,
        antifraud_info=row.antifraud_info,
        default_payment_source_id=row.default_payment_source_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )
