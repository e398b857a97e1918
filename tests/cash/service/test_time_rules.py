"""The cash flow's time rules, in-process with a clock that moves on command (both backends).

Expiry of a reference (``03``), of a lookup, and of the reversal window cannot be waited for
over HTTP; here the services run against a real database and a real approval endpoint, and
only the clock is ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from caja.delivery.approvals import ApprovalClient
from caja.domain.cash_payments import CashSettings
from caja.domain.clock import FixedClock
from caja.domain.customers import NewCustomer
from caja.domain.failure_codes import FailureCode
from caja.domain.payment_sources import DAY, NewPaymentSource, PaymentSourceType
from caja.services import cash_payments, customers, networks, payment_sources
from caja.services.cash_payments import CashDesk, LookupRequest, PaymentRequest, ReversalRefusedError
from tests.delivery.conftest import World
from tests.tools.receiver import Received, Receiver, Reply, always

BASE_URL = "http://caja.test"


@pytest.fixture
async def desk(world: World, receiver: Receiver) -> AsyncIterator[CashDesk]:
    receiver.on("/sync", always(Reply(body=b'{"payable": true, "min_amount": 100, "max_amount": 90000}')))
    await world.webhook(receiver.url("/sync"), synchronous=True)
    clock = FixedClock(world.clock.now())
    approvals = ApprovalClient(world.uow, clock, world.box, budget=2.0)
    try:
        yield CashDesk(
            world.uow, clock, approvals, CashSettings(lookup_ttl=600, reversal_window=3600), BASE_URL
        )
    finally:
        await approvals.aclose()


async def _reference(desk: CashDesk, world: World, expires_in_days: int = 0) -> str:
    now = desk.clock.now()
    source = NewPaymentSource(
        PaymentSourceType.CASH_RECURRENT, now + expires_in_days * DAY if expires_in_days else 0
    )
    customer = await customers.create(
        world.uow,
        desk.clock,
        world.tenant,
        NewCustomer(name="Ana", email="ana@example.com", payment_sources=(source,)),
        BASE_URL,
    )
    return customer.payment_sources[0].reference


async def _network(desk: CashDesk, world: World) -> networks.IssuedNetwork:
    return await networks.create(world.uow, desk.clock, world.box, "Red", livemode=False)


def _clock(desk: CashDesk) -> FixedClock:
    assert isinstance(desk.clock, FixedClock)
    return desk.clock


async def test_an_expired_reference_declines_with_03(desk: CashDesk, world: World) -> None:
    network = (await _network(desk, world)).network
    reference = await _reference(desk, world, expires_in_days=2)
    assert (await cash_payments.lookup(desk, network, LookupRequest(reference, "Soriana"))).lookup is not None
    _clock(desk).advance(2 * DAY)
    outcome = await cash_payments.lookup(desk, network, LookupRequest(reference, "Soriana"))
    assert outcome.failure is FailureCode.REFERENCE_EXPIRED
    paid = await cash_payments.pay(desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-1"))
    assert paid.body["failure_code"] == "03"


async def test_an_expired_lookup_is_asked_again(desk: CashDesk, world: World, receiver: Receiver) -> None:
    network = (await _network(desk, world)).network
    reference = await _reference(desk, world)
    first = await cash_payments.lookup(desk, network, LookupRequest(reference, "Soriana"))
    assert first.lookup is not None
    _clock(desk).advance(601)
    paid = await cash_payments.pay(
        desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-2", lookup_id=first.lookup.id)
    )
    assert paid.paid
    lookups = [r for r in receiver.to("/sync") if b"inbound_payment.lookup" in r.body]
    assert len(lookups) == 2


async def test_the_reversal_window(desk: CashDesk, world: World) -> None:
    network = (await _network(desk, world)).network
    reference = await _reference(desk, world)
    early = await cash_payments.pay(desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-3"))
    late = await cash_payments.pay(desk, network, PaymentRequest(reference, 20_000, "Soriana", "t-4"))
    _clock(desk).advance(3600)
    reversed_ = await cash_payments.reverse(desk, network, int(early.body["authorization_code"]))
    assert reversed_.status.value == "reversed"
    _clock(desk).advance(1)
    with pytest.raises(ReversalRefusedError) as refused:
        await cash_payments.reverse(desk, network, int(late.body["authorization_code"]))
    assert refused.value.http_status == 422
    assert await cash_payments.reverse_latest(desk, world.tenant, network, reference) is None
    assert late.charge_id is not None
    async with world.uow() as tx:
        still = await tx.orders.get_charge(world.tenant, late.charge_id)
    assert still is not None and still.status.value == "paid"


async def test_a_reference_deleted_while_the_merchant_answers_is_not_charged(
    desk: CashDesk, world: World, receiver: Receiver
) -> None:
    network = (await _network(desk, world)).network
    reference = await _reference(desk, world)
    async with world.uow() as tx:
        source = await tx.payment_sources.find_by_reference(reference)
    assert source is not None
    loop = asyncio.get_running_loop()

    def delete_then_approve(request: Received) -> Reply:
        # The merchant's own backend deletes the source while Caja waits for this very answer.
        if b"inbound_payment.payment_attempt" in request.body:
            deletion = payment_sources.delete(
                world.uow, desk.clock, world.tenant, source.customer_id, source.id, BASE_URL
            )
            asyncio.run_coroutine_threadsafe(deletion, loop).result(timeout=10)
        return Reply(body=b'{"payable": true}')

    receiver.on("/sync", delete_then_approve)
    outcome = await cash_payments.pay(desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-5"))
    assert outcome.body["failure_code"] == "13"
    async with world.uow(write=True) as tx:  # the query locks what it finds
        assert await tx.orders.latest_paid_on_reference(world.tenant, network.id, reference, 0) is None
        recorded = await tx.cash_payments.transaction(network.id, "t-5")
    assert recorded is not None and recorded.status == "declined"
