"""Order and charge rows (the recurrent cash flow creates one order holding one charge per payment)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from caja.domain.orders import (
    CashPaymentMethod,
    Charge,
    ChargeStatus,
    Order,
    OrderPaymentStatus,
    PayerDetails,
)
from caja.domain.paging import PageRequest
from caja.domain.tenancy import Tenant
from caja.store.connection import Conn
from caja.store.pagination import RowPage, fetch_page
from caja.store.prepared import Prepared
from caja.store.tables import charges, orders


@dataclass(frozen=True, slots=True)
class OrderFilters:
    """``GET /orders`` query filters of Conekta's spec (epoch seconds, inclusive bounds)."""

    payment_status: str | None = None
    last_payment_info_status: str | None = None
    created_at: int | None = None
    created_at_gte: int | None = None
    created_at_lte: int | None = None
    updated_at_gte: int | None = None
    updated_at_lte: int | None = None


def _order_tenant(tenant: Tenant) -> sa.ColumnElement[bool]:
    return sa.and_(orders.c.account_id == tenant.account_id, orders.c.livemode.is_(tenant.livemode))


def _charge_tenant(tenant: Tenant) -> sa.ColumnElement[bool]:
    return sa.and_(charges.c.account_id == tenant.account_id, charges.c.livemode.is_(tenant.livemode))


_ORDER_COLUMNS = [c.key for c in orders.columns if c.key != "seq"]
_CHARGE_COLUMNS = [c.key for c in charges.columns if c.key != "seq"]
_INSERT_ORDER = Prepared(orders.insert(), keys=_ORDER_COLUMNS)
# A clash on the random auth code (or id) inserts nothing; the caller draws again.
_INSERT_CHARGE = {
    "postgresql": Prepared(
        postgresql.insert(charges).on_conflict_do_nothing().returning(charges.c.seq), keys=_CHARGE_COLUMNS
    ),
    "sqlite": Prepared(
        sqlite.insert(charges).on_conflict_do_nothing().returning(charges.c.seq), keys=_CHARGE_COLUMNS
    ),
}
_ORDER_QUERY = sa.select(orders).where(
    orders.c.id == sa.bindparam("id"),
    orders.c.account_id == sa.bindparam("account_id"),
    orders.c.livemode == sa.bindparam("livemode"),
)
_GET_ORDER = Prepared(_ORDER_QUERY)
_GET_ORDER_FOR_UPDATE = Prepared(_ORDER_QUERY.with_for_update())
_CHARGES_OF_ORDER = Prepared(
    sa.select(charges).where(charges.c.order_id == sa.bindparam("order_id")).order_by(charges.c.seq)
)
_CHARGE_BY_AUTH_CODE = Prepared(
    sa.select(charges).where(charges.c.auth_code == sa.bindparam("auth_code")).with_for_update()
)
_LATEST_PAID_ON_REFERENCE = Prepared(
    sa.select(charges)
    .where(
        charges.c.reference == sa.bindparam("reference"),
        charges.c.account_id == sa.bindparam("account_id"),
        charges.c.livemode == sa.bindparam("livemode"),
        charges.c.network_id == sa.bindparam("network_id"),
        charges.c.status == ChargeStatus.PAID.value,
        charges.c.paid_at >= sa.bindparam("paid_since"),
    )
    .order_by(charges.c.seq.desc())
    .limit(1)
    .with_for_update()
)


class OrderRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def insert_order(self, order: Order) -> None:
        await self._conn.run(_INSERT_ORDER, order_columns(order))

    async def insert_charge_if_unique(self, charge: Charge) -> bool:
        result = await self._conn.run(_INSERT_CHARGE[self._conn.dialect.name], charge_columns(charge))
        return result.first() is not None

    async def get(self, tenant: Tenant, order_id: str, *, for_update: bool = False) -> Order | None:
        params = {"id": order_id, "account_id": tenant.account_id, "livemode": tenant.livemode}
        row = (await self._conn.run(_GET_ORDER_FOR_UPDATE if for_update else _GET_ORDER, params)).first()
        if row is None:
            return None
        found = (await self._conn.run(_CHARGES_OF_ORDER, {"order_id": order_id})).all()
        return to_order(row).with_charges(tuple(to_charge(r) for r in found))

    async def with_charges(self, rows: Iterable[sa.Row[Any]]) -> list[Order]:
        """Orders of a page, each with its charges, in two queries whatever the page size."""
        page = [to_order(r) for r in rows]
        if not page:
            return []
        query = sa.select(charges).where(charges.c.order_id.in_([o.id for o in page])).order_by(charges.c.seq)
        by_order: dict[str, list[Charge]] = {}
        for row in (await self._conn.execute(query)).all():
            by_order.setdefault(row.order_id, []).append(to_charge(row))
        return [o.with_charges(tuple(by_order.get(o.id, ()))) for o in page]

    async def charge_by_auth_code(self, auth_code: int) -> Charge | None:
        """Across accounts, as a store quotes it; locked, since a reversal follows."""
        row = (await self._conn.run(_CHARGE_BY_AUTH_CODE, {"auth_code": auth_code})).first()
        return to_charge(row) if row else None

    async def latest_paid_on_reference(
        self, tenant: Tenant, network_id: str, reference: str, paid_since: int
    ) -> Charge | None:
        """The latest paid charge on ``reference`` that ``network_id`` took since ``paid_since``."""
        params = {
            "reference": reference,
            "account_id": tenant.account_id,
            "livemode": tenant.livemode,
            "network_id": network_id,
            "paid_since": paid_since,
        }
        row = (await self._conn.run(_LATEST_PAID_ON_REFERENCE, params)).first()
        return to_charge(row) if row else None

    async def set_order_status(self, order_id: str, status: OrderPaymentStatus, now: int) -> None:
        await self._conn.execute(
            orders.update().where(orders.c.id == order_id).values(payment_status=status.value, updated_at=now)
        )

    async def set_charge_status(self, charge: Charge) -> None:
        await self._conn.execute(
            charges.update()
            .where(charges.c.id == charge.id)
            .values(
                status=charge.status.value,
                updated_at=charge.updated_at,
                paid_at=charge.paid_at,
                reversed_at=charge.reversed_at,
            )
        )

    async def page_orders(self, tenant: Tenant, request: PageRequest, filters: OrderFilters) -> RowPage:
        where = _order_tenant(tenant)
        conditions: list[sa.ColumnElement[bool]] = []
        if filters.payment_status:
            conditions.append(orders.c.payment_status == filters.payment_status)
        if filters.last_payment_info_status:
            # Cash orders hold one charge: its status is the last payment's.
            latest = (
                sa.select(charges.c.status)
                .where(charges.c.order_id == orders.c.id)
                .order_by(charges.c.seq.desc())
                .limit(1)
                .scalar_subquery()
            )
            conditions.append(latest == filters.last_payment_info_status)
        if filters.created_at is not None:
            conditions.append(orders.c.created_at == filters.created_at)
        if filters.created_at_gte is not None:
            conditions.append(orders.c.created_at >= filters.created_at_gte)
        if filters.created_at_lte is not None:
            conditions.append(orders.c.created_at <= filters.created_at_lte)
        if filters.updated_at_gte is not None:
            conditions.append(orders.c.updated_at >= filters.updated_at_gte)
        if filters.updated_at_lte is not None:
            conditions.append(orders.c.updated_at <= filters.updated_at_lte)
        if request.search:
            by_reference = sa.select(charges.c.order_id).where(
                _charge_tenant(tenant),
                sa.or_(charges.c.reference == request.search, charges.c.id == request.search),
            )
            conditions.append(
                sa.or_(
                    orders.c.id == request.search,
                    orders.c.customer_id == request.search,
                    orders.c.id.in_(by_reference),
                )
            )
        filtered = sa.and_(where, *conditions) if conditions else where
        return await fetch_page(self._conn, orders, filtered, request, cursor_scope=where)

    async def page_charges(self, tenant: Tenant, request: PageRequest) -> RowPage:
        where = _charge_tenant(tenant)
        filtered = where
        if request.search:
            filtered = sa.and_(
                where,
                sa.or_(
                    charges.c.id == request.search,
                    charges.c.order_id == request.search,
                    charges.c.customer_id == request.search,
                    charges.c.reference == request.search,
                    charges.c.status == request.search,
                ),
            )
        return await fetch_page(self._conn, charges, filtered, request, cursor_scope=where)

    async def get_charge(self, tenant: Tenant, charge_id: str) -> Charge | None:
        query = sa.select(charges).where(_charge_tenant(tenant), charges.c.id == charge_id)
        row = (await self._conn.execute(query)).first()
        return to_charge(row) if row else None


def _payer_json(payer: PayerDetails) -> dict[str, Any]:
    return {
        "name": payer.name,
        "email": payer.email,
        "phone": payer.phone,
        "corporate": payer.corporate,
        "custom_reference": payer.custom_reference,
    }


def _payer(data: dict[str, Any]) -> PayerDetails:
    return PayerDetails(
        name=data["name"],
        email=data.get("email"),
        phone=data.get("phone"),
        corporate=bool(data.get("corporate", False)),
        custom_reference=data.get("custom_reference") or "",
    )


def order_columns(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "account_id": order.account_id,
        "livemode": order.livemode,
        "customer_id": order.customer_id,
        "amount": order.amount,
        "currency": order.currency,
        "payment_status": order.payment_status.value,
        "customer_info": _payer_json(order.payer),
        "metadata": order.metadata,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def charge_columns(charge: Charge) -> dict[str, Any]:
    method = charge.payment_method
    return {
        "id": charge.id,
        "account_id": charge.account_id,
        "livemode": charge.livemode,
        "order_id": charge.order_id,
        "customer_id": charge.customer_id,
        "payment_source_id": charge.payment_source_id,
        "network_id": charge.network_id,
        "reference": method.reference,
        "auth_code": method.auth_code,
        "amount": charge.amount,
        "fee": charge.fee,
        "currency": charge.currency,
        "status": charge.status.value,
        "payment_method": {
            "store_name": method.store_name,
            "store": method.store,
            "cashier_id": method.cashier_id,
            "expires_at": method.expires_at,
        },
        "payer": _payer_json(charge.payer),
        "created_at": charge.created_at,
        "updated_at": charge.updated_at,
        "paid_at": charge.paid_at,
        "reversed_at": charge.reversed_at,
    }


def to_order(row: Any) -> Order:
    return Order(
        id=row.id,
        account_id=row.account_id,
        livemode=bool(row.livemode),
        customer_id=row.customer_id,
        amount=row.amount,
        currency=row.currency,
        payment_status=OrderPaymentStatus(row.payment_status),
        payer=_payer(row.customer_info),
        metadata=dict(row.metadata),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def to_charge(row: Any) -> Charge:
    method = row.payment_method
    return Charge(
        id=row.id,
        account_id=row.account_id,
        livemode=bool(row.livemode),
        order_id=row.order_id,
        customer_id=row.customer_id,
        payment_source_id=row.payment_source_id,
        network_id=row.network_id,
        amount=row.amount,
        fee=row.fee,
        currency=row.currency,
        status=ChargeStatus(row.status),
        payment_method=CashPaymentMethod(
            reference=row.reference,
            expires_at=method.get("expires_at", 0),
            store_name=method["store_name"],
            store=method.get("store"),
            cashier_id=method.get("cashier_id"),
            auth_code=row.auth_code,
        ),
        payer=_payer(row.payer),
        created_at=row.created_at,
        updated_at=row.updated_at,
        paid_at=row.paid_at,
        reversed_at=row.reversed_at,
    )
