"""``POST /payment_test``: the network path, driven by the sandbox's own simulated store.

Test keys only. Each call does exactly what a store would (lookup, then payment; or a
reversal), through the merchant's synchronous webhook, and answers what the store saw.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from caja.delivery.keyring import SecretBox
from caja.domain import ids
from caja.domain.errors import ForbiddenError, ParameterValidationError, ResourceNotFoundError
from caja.domain.tenancy import Tenant
from caja.services import cash_payments, networks
from caja.services.cash_payments import CashDesk, LookupRequest, PaymentRequest

DEFAULT_STORE = "7 Eleven"


class TestEvent(enum.StrEnum):
    LOOKUP = "inbound_payment.lookup"
    PAYMENT_ATTEMPT = "inbound_payment.payment_attempt"
    REVERSE = "inbound_payment.reverse"


@dataclass(frozen=True, slots=True)
class PaymentTest:
    event_type: TestEvent
    reference: str
    amount: int | None = None
    store: str = DEFAULT_STORE


async def run(desk: CashDesk, box: SecretBox, tenant: Tenant, test: PaymentTest) -> dict[str, Any]:
    if tenant.livemode:
        raise ForbiddenError.test_key_required()
    network = (await networks.sandbox_for(desk.uow, desk.clock, box, tenant)).network
    answer: dict[str, Any] = {
        "object": "payment_test",
        "event_type": test.event_type.value,
        "reference": test.reference,
        "livemode": False,
        "store": test.store,
    }
    if test.event_type is TestEvent.REVERSE:
        charge = await cash_payments.reverse_latest(desk, tenant, network, test.reference)
        if charge is None:
            raise ResourceNotFoundError.entity("Payment", test.reference)
        answer["store"] = charge.payment_method.store_name  # where it was paid, not the default
        answer["reversal"] = cash_payments.reversal_json(charge)
        answer["charge_id"] = charge.id
        answer["order_id"] = charge.order_id
        return answer
    seen = await cash_payments.lookup(
        desk, network, LookupRequest(reference=test.reference, store=test.store)
    )
    answer["lookup"] = seen.as_json()
    if test.event_type is TestEvent.LOOKUP or seen.lookup is None:
        return answer
    if test.amount is None:
        raise ParameterValidationError.missing("amount")
    outcome = await cash_payments.pay(
        desk,
        network,
        PaymentRequest(
            reference=test.reference,
            amount=test.amount,
            store=test.store,
            transaction_id=f"test_{ids.new_hex_id()}",
            cashier="payment_test",
            lookup_id=seen.lookup.id,
        ),
    )
    answer["payment"] = outcome.body
    if outcome.charge_id is not None:
        answer["charge_id"] = outcome.charge_id
    return answer
