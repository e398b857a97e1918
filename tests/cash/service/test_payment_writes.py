"""A paid payment's rows, written in one statement on PostgreSQL and one by one on SQLite (both backends).

The ordinary path is covered end to end elsewhere; here are the branches a payment rarely takes
(a clash on the random auth code, a lookup or a party that changed while the merchant answered)
and what the write leaves behind in each. On PostgreSQL a payment whose parties did not change is
written by one statement with no transaction around it; when they did, by a transaction that
reads them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from caja.domain.networks import Network
from caja.services import cash_payments
from caja.services.cash_payments import CashDesk, LookupRequest, PaymentRequest
from caja.store.postgres import PgConn
from caja.store.tables import (
    cash_lookups,
    charges,
    customers,
    events,
    jobs,
    network_payments,
    orders,
    webhooks,
)
from tests.cash.service.test_time_rules import _network, _reference, desk  # noqa: F401 (fixture)
from tests.delivery.conftest import World
from tests.tools.receiver import Receiver


def _draws(monkeypatch: pytest.MonkeyPatch, codes: list[int]) -> None:
    drawn: Iterator[int] = iter(codes)
    monkeypatch.setattr(cash_payments, "new_auth_code", lambda: next(drawn))


async def _looked_up(desk: CashDesk, world: World) -> tuple[Network, str, str]:  # noqa: F811
    """A network, a reference, and the id of a lookup of it by the store "Soriana"."""
    network = (await _network(desk, world)).network
    reference = await _reference(desk, world)
    looked_up = await cash_payments.lookup(desk, network, LookupRequest(reference, "Soriana"))
    assert looked_up.lookup is not None
    return network, reference, looked_up.lookup.id


async def _rows(world: World, query: sa.Select[Any]) -> list[Any]:
    return list(await world.database.run_sync(lambda c: c.execute(query).all()))


async def test_a_clash_on_the_auth_code_draws_again_and_writes_once(
    desk: CashDesk,  # noqa: F811 (the fixture imported above)
    world: World,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = await world.webhook(receiver.url("/paid-only"))
    await world.database.run_sync(
        lambda c: c.execute(
            webhooks.update().where(webhooks.c.id == hook.id).values(subscribed_events=["charge.paid"])
        )
    )
    network = (await _network(desk, world)).network
    reference = await _reference(desk, world)
    # The second payment draws the first one's code twice: on PostgreSQL the one-statement write
    # sees it taken and leaves the payment to the transaction, which draws it again, then anew.
    _draws(monkeypatch, [11_111_111, 11_111_111, 11_111_111, 22_222_222])

    first = await cash_payments.pay(desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-1"))
    looked_up = await cash_payments.lookup(desk, network, LookupRequest(reference, "OXXO"))
    assert looked_up.lookup is not None
    second = await cash_payments.pay(
        desk, network, PaymentRequest(reference, 20_000, "OXXO", "t-2", lookup_id=looked_up.lookup.id)
    )

    assert first.body["authorization_code"] == "11111111"
    assert second.body["status"] == "paid" and second.body["authorization_code"] == "22222222"
    written = await _rows(world, sa.select(charges.c.id, charges.c.auth_code).order_by(charges.c.seq))
    assert [row.auth_code for row in written] == [11_111_111, 22_222_222]
    assert written[1].id == second.charge_id
    assert len(await _rows(world, sa.select(orders.c.id))) == 2
    claimed = await _rows(
        world, sa.select(cash_lookups.c.charge_id).where(cash_lookups.c.id == looked_up.lookup.id)
    )
    assert claimed == [(second.charge_id,)]
    answers = await _rows(
        world, sa.select(network_payments.c.transaction_id, network_payments.c.charge_id).order_by("seq")
    )
    assert answers == [("t-1", first.charge_id), ("t-2", second.charge_id)]
    # Each payment's four events, written once each and in the order they happened.
    told = await _rows(world, sa.select(events.c.type).order_by(events.c.seq))
    payment_types = [row.type for row in told if row.type.startswith(("order.", "charge."))]
    assert payment_types == ["order.created", "charge.created", "charge.paid", "order.paid"] * 2
    # One receipt per payment, with the code the store was given; one delivery per charge.paid.
    queued = await _rows(
        world, sa.select(jobs.c.kind, jobs.c.webhook_id, jobs.c.payload).order_by(jobs.c.seq)
    )
    receipts = [row.payload["context"]["authorization_code"] for row in queued if row.kind == "email"]
    assert receipts == ["11111111", "22222222"]
    deliveries = [row.payload["body"]["type"] for row in queued if row.webhook_id == hook.id]
    assert deliveries == ["charge.paid", "charge.paid"]


async def test_a_lookup_used_while_the_merchant_answered_declines_and_writes_only_the_answer(
    desk: CashDesk,  # noqa: F811
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    network, reference, lookup_id = await _looked_up(desk, world)

    # Another payment takes the lookup while the merchant is asked about this one.
    async def use_the_lookup() -> None:
        used = cash_lookups.update().where(cash_lookups.c.id == lookup_id).values(charge_id="ch_other")
        await world.database.run_sync(lambda c: c.execute(used))

    _meanwhile(desk, monkeypatch, use_the_lookup)

    declined = await cash_payments.pay(
        desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-1", lookup_id=lookup_id)
    )

    assert declined.body["status"] == "declined" and declined.body["failure_code"] == "36"
    assert declined.charge_id is None
    assert await _rows(world, sa.select(charges.c.id)) == []
    assert await _rows(world, sa.select(orders.c.id)) == []
    assert await _rows(world, sa.select(jobs.c.id).where(jobs.c.kind != "approval")) == []
    told = [row.type for row in await _rows(world, sa.select(events.c.type))]
    assert sorted(told) == ["customer.created", "payment_source.created"]
    answers = await _rows(world, sa.select(network_payments.c.transaction_id, network_payments.c.status))
    assert answers == [("t-1", "declined")]
    claimed = await _rows(world, sa.select(cash_lookups.c.charge_id).where(cash_lookups.c.id == lookup_id))
    assert claimed == [("ch_other",)]


async def _one_customer_id(world: World) -> str:
    found = await _rows(world, sa.select(customers.c.id))
    assert len(found) == 1
    return str(found[0].id)


def _meanwhile(
    cash_desk: CashDesk, monkeypatch: pytest.MonkeyPatch, change: Callable[[], Awaitable[None]]
) -> None:
    """Run ``change`` while the merchant is asked about the payment (after the payment's reads)."""
    ask = cash_desk.approvals.request

    async def ask_after_the_change(*args: Any, **kwargs: Any) -> Any:
        await change()
        return await ask(*args, **kwargs)

    monkeypatch.setattr(cash_desk.approvals, "request", ask_after_the_change)


async def test_a_customer_renamed_while_the_merchant_answered_is_read_again(
    desk: CashDesk,  # noqa: F811
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    network = (await _network(desk, world)).network
    reference = await _reference(desk, world)
    customer_id = await _one_customer_id(world)

    async def rename() -> None:
        renamed = customers.update().where(customers.c.id == customer_id).values(name="Ana María")
        await world.database.run_sync(lambda c: c.execute(renamed))

    _meanwhile(desk, monkeypatch, rename)
    paid = await cash_payments.pay(desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-1"))

    assert paid.body["status"] == "paid"
    payers = await _rows(world, sa.select(orders.c.customer_info))
    assert [row.customer_info["name"] for row in payers] == ["Ana María"]
    assert [row.payer["name"] for row in await _rows(world, sa.select(charges.c.payer))] == ["Ana María"]


async def test_a_webhook_added_while_the_merchant_answered_gets_the_payments_events(
    desk: CashDesk,  # noqa: F811
    world: World,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    network = (await _network(desk, world)).network
    reference = await _reference(desk, world)
    added: list[str] = []

    async def add_webhook() -> None:
        if not added:
            added.append((await world.webhook(receiver.url("/late"))).id)

    _meanwhile(desk, monkeypatch, add_webhook)
    paid = await cash_payments.pay(desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-1"))

    assert paid.body["status"] == "paid"
    queued = await _rows(
        world, sa.select(jobs.c.payload).where(jobs.c.webhook_id == added[0]).order_by(jobs.c.seq)
    )
    assert [row.payload["body"]["type"] for row in queued] == [
        "order.created",
        "charge.created",
        "charge.paid",
        "order.paid",
    ]


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_on_postgresql_a_payment_whose_parties_did_not_change_is_one_statement(
    desk: CashDesk,  # noqa: F811
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No BEGIN, no re-read: the write checks what it would have re-read in the same statement."""
    network, reference, lookup_id = await _looked_up(desk, world)
    ours = asyncio.current_task()
    begun: list[str] = []
    begin = PgConn.begin

    async def counted_begin(self: PgConn, options: dict[str, Any]) -> None:
        if asyncio.current_task() is ours:  # not the approval calls' log, written in the background
            begun.append("BEGIN")
        await begin(self, options)

    monkeypatch.setattr(PgConn, "begin", counted_begin)
    paid = await cash_payments.pay(
        desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-1", lookup_id=lookup_id)
    )

    assert paid.body["status"] == "paid"
    assert begun == []
    assert len(await _rows(world, sa.select(charges.c.id))) == 1
