"""Rows of the store side of recurrent cash: lookups and store transactions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from caja.domain.cash_payments import CashLookup, StoreTransaction
from caja.domain.customers import Customer
from caja.domain.payment_sources import PaymentSource
from caja.store.connection import Conn
from caja.store.customers import to_customer
from caja.store.payment_sources import to_payment_source
from caja.store.prepared import Prepared, named_row
from caja.store.tables import accounts, cash_lookups, customers, network_payments, payment_sources, webhooks

# A reference and its customer (deleted or not) in one statement: what a store's scan needs to know.
_SOURCE_WIDTH = len(payment_sources.columns)
_CustomerRow = named_row([column.key for column in customers.columns])
_CUSTOMER_ID = [column.key for column in customers.columns].index("id")
_CUSTOMER_END = _SOURCE_WIDTH + len(customers.columns)
_OWNER_COLUMNS: list[Any] = [
    payment_sources,
    *(column.label(f"customer_{column.key}") for column in customers.columns),
]
_OWNER_JOIN = payment_sources.outerjoin(customers, customers.c.id == payment_sources.c.customer_id)
_BY_REFERENCE = payment_sources.c.reference == sa.bindparam("reference")
_REFERENCE_OWNER = Prepared(sa.select(*_OWNER_COLUMNS).select_from(_OWNER_JOIN).where(_BY_REFERENCE))
# ...and the name of the merchant it belongs to, for the payer's receipt: one statement in a payment.
_REFERENCE_PARTIES = Prepared(
    sa.select(*_OWNER_COLUMNS, accounts.c.name.label("merchant_name"))
    .select_from(_OWNER_JOIN.outerjoin(accounts, accounts.c.id == payment_sources.c.account_id))
    .where(_BY_REFERENCE)
)
_LOOKUP_COLUMNS = [c.key for c in cash_lookups.columns if c.key != "seq"]
_INSERT_LOOKUP = Prepared(cash_lookups.insert(), keys=_LOOKUP_COLUMNS)
_GET_LOOKUP = Prepared(sa.select(cash_lookups).where(cash_lookups.c.id == sa.bindparam("lookup_id")))
# The store's latest lookup of the reference that no payment used yet and that is still valid.
_LATEST_OPEN_LOOKUP = Prepared(
    sa.select(cash_lookups)
    .where(
        cash_lookups.c.reference == sa.bindparam("reference"),
        cash_lookups.c.network_id == sa.bindparam("network_id"),
        cash_lookups.c.store == sa.bindparam("store"),
        cash_lookups.c.charge_id.is_(None),
        cash_lookups.c.expires_at > sa.bindparam("now"),
    )
    .order_by(cash_lookups.c.seq.desc())
    .limit(1)
)
# Claims a lookup for one charge; no row back means another payment used it first. The same
# charge may claim it again: a payment that drew a taken auth code tries once more.
_USE_LOOKUP = Prepared(
    cash_lookups.update()
    .where(
        cash_lookups.c.id == sa.bindparam("lookup_id"),
        sa.or_(cash_lookups.c.charge_id.is_(None), cash_lookups.c.charge_id == sa.bindparam("charge_id")),
    )
    .values(charge_id=sa.bindparam("charge_id"))
    .returning(cash_lookups.c.id)
)

_TRANSACTION_COLUMNS = [c.key for c in network_payments.columns if c.key != "seq"]
_TRANSACTION_QUERY = sa.select(network_payments).where(
    network_payments.c.network_id == sa.bindparam("network_id"),
    network_payments.c.transaction_id == sa.bindparam("transaction_id"),
)
_NAMED_LOOKUP_QUERY = sa.select(cash_lookups).where(cash_lookups.c.id == sa.bindparam("lookup_id"))
# As _REFERENCE_PARTIES, with labels unique in a subquery (``customer_id`` is a payment source's),
# and the row versions (``xmin``) of the reference and its customer: a payment that finds them
# unchanged when it writes need not read them again (caja.store.payment_writes).
_OWNER_QUERY = (
    sa.select(
        payment_sources,
        *(column.label(f"owner_{column.key}") for column in customers.columns),
        sa.literal_column("payment_sources.xmin::text").label("source_version"),
        sa.literal_column("customers.xmin::text").label("customer_version"),
        accounts.c.name.label("merchant_name"),
    )
    .select_from(_OWNER_JOIN.outerjoin(accounts, accounts.c.id == payment_sources.c.account_id))
    .where(_BY_REFERENCE)
)
# The webhooks an event of the reference's tenant fans out to (as FANOUT_QUERY), as one JSON array,
# and a digest of it that a write compares to see that they did not change meanwhile.
_W = webhooks.alias("w")
_LIVE_HOOK = _W.c.deleted_at.is_(None)
WEBHOOKS_JSON = (
    "coalesce(json_agg(json_build_array(w.id, w.url, w.subscribed_events, w.status, w.active, w.synchronous) "
    "ORDER BY w.id), '[]'::json)"
)
WEBHOOKS_DIGEST = f"md5(({WEBHOOKS_JSON})::text)"
_WebhookRow = named_row(["id", "url", "subscribed_events", "status", "active", "synchronous"])


def _facts_in_one_statement(lookup_query: sa.Select[Any]) -> Prepared:
    """A payment's reads as one PostgreSQL statement: each a LATERAL subquery joined to one row,
    so each part that finds nothing comes back as NULLs rather than removing the row."""
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    answer = _TRANSACTION_QUERY.lateral("answer")
    owner = _OWNER_QUERY.lateral("owner")
    lookup = lookup_query.lateral("lookup")
    hooks = (
        sa.select(
            sa.literal_column(WEBHOOKS_JSON, type_=postgresql.JSON).label("hooks"),
            sa.literal_column(WEBHOOKS_DIGEST, type_=sa.String).label("hooks_digest"),
        )
        .select_from(_W)
        .where(
            _W.c.account_id == owner.c.account_id,
            _W.c.livemode == owner.c.livemode,
            _W.c.deleted_at.is_(None),
        )
        .lateral("hooks")
    )
    joined = (
        one.outerjoin(answer, sa.true())
        .outerjoin(owner, sa.true())
        .outerjoin(lookup, sa.true())
        .outerjoin(hooks, sa.true())
    )
    return Prepared(sa.select(answer, owner, lookup, hooks).select_from(joined))


# Where each part's columns lie in the row of that statement, and how to tell a part found nothing.
_TRANSACTION_WIDTH = len(network_payments.columns)
_OwnerRow = named_row(
    [column.key for column in payment_sources.columns]
    + [f"customer_{key}" for key in _CustomerRow._fields]
    + ["source_version", "customer_version", "merchant_name"]
)
_OWNER_END = _TRANSACTION_WIDTH + len(_OwnerRow._fields)
_LookupRow = named_row([column.key for column in cash_lookups.columns])
_LOOKUP_END = _OWNER_END + len(_LookupRow._fields)
_TransactionRow = named_row([column.key for column in network_payments.columns])
_TRANSACTION_KEY = _TransactionRow._fields.index("seq")
_SOURCE_ID = _OwnerRow._fields.index("id")
_LOOKUP_ID = _LookupRow._fields.index("id")
_INSERT_TRANSACTION = {
    "postgresql": Prepared(
        postgresql.insert(network_payments).on_conflict_do_nothing().returning(network_payments.c.seq),
        keys=_TRANSACTION_COLUMNS,
    ),
    "sqlite": Prepared(
        sqlite.insert(network_payments).on_conflict_do_nothing().returning(network_payments.c.seq),
        keys=_TRANSACTION_COLUMNS,
    ),
}
_GET_TRANSACTION = Prepared(_TRANSACTION_QUERY)
_FACTS_WITH_NAMED_LOOKUP = _facts_in_one_statement(_NAMED_LOOKUP_QUERY)
_FACTS_WITH_LATEST_LOOKUP = _facts_in_one_statement(_LATEST_OPEN_LOOKUP.statement)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SeenParties:
    """What a payment saw of its reference's parties before the merchant was asked (PostgreSQL):
    enough to write without reading them again, if they are unchanged when it writes."""

    source_version: str
    customer_version: str
    merchant_name: str | None
    webhooks: tuple[Any, ...]  # rows of the fan-out's columns (see caja.store.events.deliveries_of)
    webhooks_digest: str


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """What a payment reads before the merchant is asked: the store's answer to this transaction
    if it has one, the reference and its customer, and the lookup it follows (the one named, or
    the store's latest open one of the reference); on PostgreSQL also what it saw of them."""

    previous: StoreTransaction | None
    source: PaymentSource | None
    customer: Customer | None
    lookup: CashLookup | None
    seen: SeenParties | None = None


def _owner(row: Any) -> tuple[PaymentSource | None, Customer | None]:
    if row is None:
        return None, None
    customer = row[_SOURCE_WIDTH:_CUSTOMER_END]
    if customer[_CUSTOMER_ID] is None:
        return to_payment_source(row), None
    return to_payment_source(row), to_customer(_CustomerRow._make(customer))


class CashPaymentRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def reference_owner(self, reference: str) -> tuple[PaymentSource | None, Customer | None]:
        """The payment source of a reference, across every account and mode, and its customer."""
        row = (await self._conn.run(_REFERENCE_OWNER, {"reference": reference})).first()
        return _owner(row)

    async def reference_parties(
        self, reference: str
    ) -> tuple[PaymentSource | None, Customer | None, str | None]:
        """``reference_owner``, and the name of the merchant (account) the reference belongs to."""
        row = (await self._conn.run(_REFERENCE_PARTIES, {"reference": reference})).first()
        source, customer = _owner(row)
        return source, customer, None if row is None else row[_CUSTOMER_END]

    async def payment_facts(
        self,
        network_id: str,
        transaction_id: str,
        reference: str,
        store: str,
        lookup_id: str | None,
        now: int,
    ) -> PaymentFacts:
        """A payment's reads: on PostgreSQL one statement (one round trip, not three), each in its
        own snapshot as before; on SQLite three, each microseconds from the page cache."""
        if self._conn.dialect.name != "postgresql":
            source, customer = await self.reference_owner(reference)
            return PaymentFacts(
                await self.transaction(network_id, transaction_id),
                source,
                customer,
                await self.lookup(lookup_id)
                if lookup_id is not None
                else await self.latest_open_lookup(network_id, store, reference, now),
            )
        params = {
            "network_id": network_id,
            "transaction_id": transaction_id,
            "reference": reference,
            "store": store,
            "now": now,
            "lookup_id": lookup_id,
        }
        statement = _FACTS_WITH_LATEST_LOOKUP if lookup_id is None else _FACTS_WITH_NAMED_LOOKUP
        row = (await self._conn.run(statement, params)).first()
        assert row is not None
        answer, owner = row[:_TRANSACTION_WIDTH], _OwnerRow._make(row[_TRANSACTION_WIDTH:_OWNER_END])
        lookup, (hooks, hooks_digest) = row[_OWNER_END:_LOOKUP_END], row[_LOOKUP_END:]
        source, customer = _owner(None if owner[_SOURCE_ID] is None else owner)
        seen = None
        if source is not None and customer is not None:
            seen = SeenParties(
                owner.source_version,
                owner.customer_version,
                owner.merchant_name,
                tuple(_WebhookRow._make(hook) for hook in hooks),
                hooks_digest,
            )
        return PaymentFacts(
            None if answer[_TRANSACTION_KEY] is None else to_transaction(_TransactionRow._make(answer)),
            source,
            customer,
            None if lookup[_LOOKUP_ID] is None else to_lookup(_LookupRow._make(lookup)),
            seen,
        )

    async def add_lookup(self, lookup: CashLookup) -> None:
        await self._conn.run(_INSERT_LOOKUP, _lookup_columns(lookup))

    async def lookup(self, lookup_id: str) -> CashLookup | None:
        row = (await self._conn.run(_GET_LOOKUP, {"lookup_id": lookup_id})).first()
        return to_lookup(row) if row else None

    async def latest_open_lookup(
        self, network_id: str, store: str, reference: str, now: int
    ) -> CashLookup | None:
        params = {"reference": reference, "network_id": network_id, "store": store, "now": now}
        row = (await self._conn.run(_LATEST_OPEN_LOOKUP, params)).first()
        return to_lookup(row) if row else None

    async def use_lookup(self, lookup_id: str, charge_id: str) -> bool:
        result = await self._conn.run(_USE_LOOKUP, {"lookup_id": lookup_id, "charge_id": charge_id})
        return result.first() is not None

    async def transaction(self, network_id: str, transaction_id: str) -> StoreTransaction | None:
        params = {"network_id": network_id, "transaction_id": transaction_id}
        row = (await self._conn.run(_GET_TRANSACTION, params)).first()
        return to_transaction(row) if row else None

    async def record_transaction(self, record: StoreTransaction) -> bool:
        """False when the store's transaction id already has an answer (a concurrent retry won).

        ON CONFLICT DO NOTHING waits, on PostgreSQL, for a concurrent insert of the same key to
        commit or roll back, so exactly one of two racing payments records its answer.
        """
        statement = _INSERT_TRANSACTION[self._conn.dialect.name]
        result = await self._conn.run(statement, transaction_columns(record))
        return result.first() is not None


def transaction_columns(record: StoreTransaction) -> dict[str, Any]:
    return {
        "network_id": record.network_id,
        "transaction_id": record.transaction_id,
        "reference": record.reference,
        "amount": record.amount,
        "status": record.status,
        "result": record.result,
        "charge_id": record.charge_id,
        "created_at": record.created_at,
    }


def _lookup_columns(lookup: CashLookup) -> dict[str, Any]:
    return {
        "id": lookup.id,
        "network_id": lookup.network_id,
        "store": lookup.store,
        "reference": lookup.reference,
        "account_id": lookup.account_id,
        "livemode": lookup.livemode,
        "payment_source_id": lookup.payment_source_id,
        "min_amount": lookup.min_amount,
        "max_amount": lookup.max_amount,
        "created_at": lookup.created_at,
        "expires_at": lookup.expires_at,
        "charge_id": lookup.charge_id,
    }


def to_lookup(row: Any) -> CashLookup:
    return CashLookup(
        id=row.id,
        network_id=row.network_id,
        store=row.store,
        reference=row.reference,
        account_id=row.account_id,
        livemode=bool(row.livemode),
        payment_source_id=row.payment_source_id,
        min_amount=row.min_amount,
        max_amount=row.max_amount,
        created_at=row.created_at,
        expires_at=row.expires_at,
        charge_id=row.charge_id,
    )


def to_transaction(row: Any) -> StoreTransaction:
    return StoreTransaction(
        network_id=row.network_id,
        transaction_id=row.transaction_id,
        reference=row.reference,
        amount=row.amount,
        status=row.status,
        result=dict(row.result),
        charge_id=row.charge_id,
        created_at=row.created_at,
    )
