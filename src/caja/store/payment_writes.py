"""A paid cash payment's rows, written together: on PostgreSQL in one statement.

A payment writes, after re-reading its reference: the lookup's claim, the charge, the order, the
store's answer, the payer's receipt job, four events and their deliveries. Statement by statement
that is nine round trips to PostgreSQL, and on a loaded machine each one puts Caja and the server
to sleep and wakes them again: the payment's own p99 was made of them. Here they are one
data-modifying statement, whose parts each run only if the part before took effect:

- the lookup is claimed (no row: another payment used it);
- the charge is inserted unless its random auth code is taken (no row: the caller draws again,
  and may claim the same lookup again with the same charge id);
- the store's answer is recorded unless the store's transaction already has one (no row: a
  concurrent retry won; the caller's transaction rolls back and replays that answer);
- only then the order, the events and the jobs.

The rows travel as JSON (``jsonb_populate_record(set)`` over the table's own row type), so the
statement's text, and the plan PostgreSQL prepares for it, is the same whatever the number of
webhooks. What the statement cannot see, the rows another of its parts inserts, it never needs.

Most payments do not even need the transaction around it (``write_if_unchanged``): when the
parties the payment read before asking the merchant are unchanged, one statement checks that and
writes everything, and commits by itself. The transaction with its re-read is the fallback.

On SQLite the same steps run one by one: each takes microseconds from the page cache, and the
transaction holds the write lock throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from caja.domain.cash_payments import StoreTransaction
from caja.domain.events import Event
from caja.domain.orders import Charge, Order
from caja.domain.tenancy import Tenant
from caja.store.cash_payments import WEBHOOKS_DIGEST, CashPaymentRepository, SeenParties, transaction_columns
from caja.store.connection import Conn
from caja.store.events import EventRepository, deliveries_of, event_columns
from caja.store.jobs import JobRepository, NewJob, job_columns
from caja.store.orders import OrderRepository, charge_columns, order_columns
from caja.store.prepared import Prepared
from caja.store.tables import cash_lookups, charges, events, jobs, network_payments, orders


class PaymentWrite(Enum):
    WRITTEN = "written"
    LOOKUP_USED = "lookup_used"
    AUTH_CODE_TAKEN = "auth_code_taken"
    ANSWER_EXISTS = "answer_exists"


@dataclass(frozen=True, slots=True)
class PaidPayment:
    """Everything a paid payment writes: its charge and order already paid, its events in order."""

    lookup_id: str
    charge: Charge
    order: Order
    answer: StoreTransaction
    events: tuple[Event, ...]
    jobs: tuple[NewJob, ...]


# The SQL is built from the schema's own table and column names, never from input.
def _insert_json_rows(table: sa.Table, param: str, *, many: bool, after: str, returning: bool) -> str:
    columns = ", ".join(f'"{c.key}"' for c in table.columns if c.key != "seq")
    function = "jsonb_populate_recordset" if many else "jsonb_populate_record"
    sql = (
        f"INSERT INTO {table.name} ({columns}) SELECT {columns} "  # noqa: S608
        f"FROM {function}(NULL::{table.name}, :{param}) WHERE EXISTS (SELECT 1 FROM {after})"
    )
    return sql + " ON CONFLICT DO NOTHING RETURNING 1" if returning else sql


_JSON_PARAMS = ("charge", "answer", "order", "events", "jobs")
_ONE_STATEMENT = Prepared(
    sa.text(
        f"WITH claimed AS (UPDATE {cash_lookups.name} SET charge_id = :charge_id WHERE id = :lookup_id "  # noqa: S608
        "AND (charge_id IS NULL OR charge_id = :charge_id) RETURNING 1), "
        f"charged AS ({_insert_json_rows(charges, 'charge', many=False, after='claimed', returning=True)}), "
        "answered AS ("
        f"{_insert_json_rows(network_payments, 'answer', many=False, after='charged', returning=True)}), "
        f"ordered AS ({_insert_json_rows(orders, 'order', many=False, after='answered', returning=False)}), "
        f"told AS ({_insert_json_rows(events, 'events', many=True, after='answered', returning=False)}), "
        f"queued AS ({_insert_json_rows(jobs, 'jobs', many=True, after='answered', returning=False)}) "
        "SELECT EXISTS (SELECT 1 FROM claimed) AS claimed, EXISTS (SELECT 1 FROM charged) AS charged, "
        "EXISTS (SELECT 1 FROM answered) AS answered"
    )
    .bindparams(
        sa.bindparam("lookup_id", type_=sa.String),
        sa.bindparam("charge_id", type_=sa.String),
        *(sa.bindparam(name, type_=postgresql.JSONB) for name in _JSON_PARAMS),
    )
    .columns(claimed=sa.Boolean, charged=sa.Boolean, answered=sa.Boolean)
)


_ALL_INSERTS_AFTER_CLAIM = ", ".join(
    f"{name} AS ({_insert_json_rows(table, param, many=many, after='claimed', returning=False)})"
    for name, table, param, many in (
        ("charged", charges, "charge", False),
        ("answered", network_payments, "answer", False),
        ("ordered", orders, "order", False),
        ("told", events, "events", True),
        ("queued", jobs, "jobs", True),
    )
)
# A payment's write with no transaction around it: it checks, in the same statement, what it would
# otherwise re-read under BEGIN (its reference and customer unchanged since the payment read them,
# its tenant's webhooks too, no answer yet for the store's transaction, its auth code free), then
# claims the lookup; every insert follows only a claim. A clash that the checks could not see (a
# concurrent insert of the same key) is a unique violation, which undoes the whole statement.
_AT_ONCE = Prepared(
    sa.text(
        "WITH unchanged AS (SELECT 1 FROM payment_sources ps JOIN customers c ON c.id = ps.customer_id "  # noqa: S608
        "WHERE ps.id = :source_id AND ps.xmin::text = :source_version AND c.xmin::text = :customer_version "
        f"AND (SELECT {WEBHOOKS_DIGEST} FROM webhooks w WHERE w.account_id = ps.account_id "
        "AND w.livemode = ps.livemode AND w.deleted_at IS NULL) = :webhooks_digest "
        "AND NOT EXISTS (SELECT 1 FROM network_payments "
        "WHERE network_id = :network_id AND transaction_id = :transaction_id) "
        "AND NOT EXISTS (SELECT 1 FROM charges WHERE auth_code = :auth_code)), "
        "claimed AS (UPDATE cash_lookups SET charge_id = :charge_id WHERE id = :lookup_id "
        "AND charge_id IS NULL AND EXISTS (SELECT 1 FROM unchanged) RETURNING 1), "
        f"{_ALL_INSERTS_AFTER_CLAIM} "
        "SELECT EXISTS (SELECT 1 FROM claimed) AS written"
    )
    .bindparams(
        *(
            sa.bindparam(name, type_=sa.String)
            for name in (
                "source_id",
                "source_version",
                "customer_version",
                "webhooks_digest",
                "network_id",
                "transaction_id",
                "charge_id",
                "lookup_id",
            )
        ),
        sa.bindparam("auth_code", type_=sa.BigInteger),
        *(sa.bindparam(name, type_=postgresql.JSONB) for name in _JSON_PARAMS),
    )
    .columns(written=sa.Boolean)
)


class PaymentWriteRepository:
    def __init__(
        self,
        conn: Conn,
        cash_payments: CashPaymentRepository,
        orders: OrderRepository,
        events: EventRepository,
        jobs: JobRepository,
    ) -> None:
        self._conn = conn
        self._cash_payments = cash_payments
        self._orders = orders
        self._events = events
        self._jobs = jobs

    async def write(self, paid: PaidPayment) -> PaymentWrite:
        """Write a paid payment, or nothing that the caller must keep (see the module's notes)."""
        if self._conn.dialect.name == "postgresql":
            return await self._write_in_one_statement(paid)
        if not await self._cash_payments.use_lookup(paid.lookup_id, paid.charge.id):
            return PaymentWrite.LOOKUP_USED
        if not await self._orders.insert_charge_if_unique(paid.charge):
            return PaymentWrite.AUTH_CODE_TAKEN
        await self._orders.insert_order(paid.order)
        if not await self._cash_payments.record_transaction(paid.answer):
            return PaymentWrite.ANSWER_EXISTS
        await self._jobs.enqueue(*paid.jobs)
        for event in paid.events:
            self._events.add(event)
        return PaymentWrite.WRITTEN

    async def write_if_unchanged(self, paid: PaidPayment, seen: SeenParties) -> bool:
        """PostgreSQL, in a unit of one statement: write the payment if its reference, customer
        and webhooks are as ``seen`` and nothing clashes. False: nothing was written (something
        changed or clashed); the caller writes it in a transaction instead, which re-reads."""
        tenant = Tenant(paid.charge.account_id, paid.charge.livemode)
        new_jobs = (*paid.jobs, *deliveries_of(paid.events, {tenant: seen.webhooks}))
        params = {
            **self._rows(paid, new_jobs),
            "source_id": paid.charge.payment_source_id,
            "source_version": seen.source_version,
            "customer_version": seen.customer_version,
            "webhooks_digest": seen.webhooks_digest,
            "network_id": paid.answer.network_id,
            "transaction_id": paid.answer.transaction_id,
            "auth_code": paid.charge.payment_method.auth_code,
        }
        try:
            row = (await self._conn.run(_AT_ONCE, params)).first()
        except sa.exc.IntegrityError:
            return False  # a concurrent insert of the same key: the statement undid itself
        if row is None or not row.written:
            return False
        self._jobs.note_enqueued(new_jobs)
        return True

    @staticmethod
    def _rows(paid: PaidPayment, new_jobs: tuple[NewJob, ...]) -> dict[str, Any]:
        return {
            "lookup_id": paid.lookup_id,
            "charge_id": paid.charge.id,
            "charge": charge_columns(paid.charge),
            "answer": transaction_columns(paid.answer),
            "order": order_columns(paid.order),
            "events": [event_columns(event) for event in paid.events],
            "jobs": [job_columns(job) for job in new_jobs],
        }

    async def _write_in_one_statement(self, paid: PaidPayment) -> PaymentWrite:
        # The webhooks are read first, as the unit's event flush would read them just before it
        # commits: under READ COMMITTED either sees the webhooks committed at that moment.
        deliveries = deliveries_of(paid.events, await self._events.webhooks_of(paid.events))
        new_jobs = (*paid.jobs, *deliveries)
        row = (await self._conn.run(_ONE_STATEMENT, self._rows(paid, new_jobs))).first()
        assert row is not None
        if not row.claimed:
            return PaymentWrite.LOOKUP_USED
        if not row.charged:
            return PaymentWrite.AUTH_CODE_TAKEN
        if not row.answered:
            return PaymentWrite.ANSWER_EXISTS
        self._jobs.note_enqueued(new_jobs)
        return PaymentWrite.WRITTEN
