"""Payment source rows: recurrent cash references and recurrent CLABEs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from caja.domain.paging import PageRequest
from caja.domain.payment_sources import PaymentSource, PaymentSourceStatus, PaymentSourceType
from caja.domain.tenancy import Tenant
from caja.store.connection import Conn
from caja.store.pagination import RowPage, fetch_page
from caja.store.prepared import Prepared
from caja.store.tables import payment_sources


def _tenant_filter(tenant: Tenant) -> sa.ColumnElement[bool]:
    return sa.and_(
        payment_sources.c.account_id == tenant.account_id, payment_sources.c.livemode.is_(tenant.livemode)
    )


_ACTIVE = payment_sources.c.status == PaymentSourceStatus.ACTIVE.value
_COLUMNS = [c.key for c in payment_sources.columns if c.key != "seq"]
_RETURNING_SEQ = payment_sources.c.seq
_INSERT_IF_UNIQUE = {
    "postgresql": Prepared(
        postgresql.insert(payment_sources).on_conflict_do_nothing().returning(_RETURNING_SEQ), keys=_COLUMNS
    ),
    "sqlite": Prepared(
        sqlite.insert(payment_sources).on_conflict_do_nothing().returning(_RETURNING_SEQ), keys=_COLUMNS
    ),
}
_ACTIVE_OF_CUSTOMER = Prepared(
    sa.select(payment_sources)
    .where(payment_sources.c.customer_id == sa.bindparam("customer_id"), _ACTIVE)
    .order_by(payment_sources.c.seq)
)


_BY_REFERENCE = Prepared(
    sa.select(payment_sources).where(payment_sources.c.reference == sa.bindparam("reference"))
)


class PaymentSourceRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def insert_if_unique(self, source: PaymentSource) -> bool:
        """Insert unless the id or reference is taken; the caller draws again on ``False``.

        ON CONFLICT DO NOTHING keeps the surrounding transaction usable on PostgreSQL, where a
        failed INSERT would otherwise abort it.
        """
        result = await self._conn.run(_INSERT_IF_UNIQUE[self._conn.dialect.name], _columns(source))
        return result.first() is not None

    async def find_by_reference(self, reference: str) -> PaymentSource | None:
        """Across every account and mode: a reference is global, like a store network sees it."""
        row = (await self._conn.run(_BY_REFERENCE, {"reference": reference})).first()
        return to_payment_source(row) if row else None

    async def find_active(self, source_id: str) -> PaymentSource | None:
        """By id alone, across every account and mode: a payer's slip URL names nothing else."""
        query = sa.select(payment_sources).where(payment_sources.c.id == source_id, _ACTIVE)
        row = (await self._conn.execute(query)).first()
        return to_payment_source(row) if row else None

    async def active_for_customers(self, customer_ids: Iterable[str]) -> dict[str, list[PaymentSource]]:
        ids = list(customer_ids)
        found: dict[str, list[PaymentSource]] = {cid: [] for cid in ids}
        if not ids:
            return found
        if len(ids) == 1:
            rows = (await self._conn.run(_ACTIVE_OF_CUSTOMER, {"customer_id": ids[0]})).all()
            found[ids[0]].extend(to_payment_source(row) for row in rows)
            return found
        query = (
            sa.select(payment_sources)
            .where(payment_sources.c.customer_id.in_(ids), _ACTIVE)
            .order_by(payment_sources.c.seq)
        )
        for row in (await self._conn.execute(query)).all():
            found[row.customer_id].append(to_payment_source(row))
        return found

    async def get(
        self, tenant: Tenant, customer_id: str, source_id: str, *, for_update: bool = False
    ) -> PaymentSource | None:
        query = sa.select(payment_sources).where(
            _tenant_filter(tenant),
            payment_sources.c.customer_id == customer_id,
            payment_sources.c.id == source_id,
            _ACTIVE,
        )
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return to_payment_source(row) if row else None

    async def update(self, source_id: str, values: dict[str, Any]) -> None:
        await self._conn.execute(
            payment_sources.update().where(payment_sources.c.id == source_id).values(**values)
        )

    async def delete_all_of_customer(self, customer_id: str, now: int) -> None:
        await self._conn.execute(
            payment_sources.update()
            .where(payment_sources.c.customer_id == customer_id, _ACTIVE)
            .values(status=PaymentSourceStatus.DELETED.value, updated_at=now)
        )

    async def page(self, tenant: Tenant, customer_id: str, request: PageRequest) -> RowPage:
        where = sa.and_(_tenant_filter(tenant), payment_sources.c.customer_id == customer_id, _ACTIVE)
        if request.search:
            where = sa.and_(
                where,
                sa.or_(
                    payment_sources.c.reference == request.search,
                    payment_sources.c.id == request.search,
                    payment_sources.c.type == request.search,
                ),
            )
        scope = sa.and_(_tenant_filter(tenant), payment_sources.c.customer_id == customer_id)
        return await fetch_page(self._conn, payment_sources, where, request, cursor_scope=scope)


def _columns(source: PaymentSource) -> dict[str, Any]:
    return {
        "id": source.id,
        "account_id": source.account_id,
        "livemode": source.livemode,
        "customer_id": source.customer_id,
        "type": source.type.value,
        "reference": source.reference,
        "expires_at": source.expires_at,
        "status": source.status.value,
        "created_at": source.created_at,
        "updated_at": source.updated_at,
    }


def to_payment_source(row: sa.Row[Any]) -> PaymentSource:
    return PaymentSource(
        id=row.id,
        account_id=row.account_id,
        livemode=bool(row.livemode),
        customer_id=row.customer_id,
        type=PaymentSourceType(row.type),
        reference=row.reference,
        expires_at=row.expires_at,
        status=PaymentSourceStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
