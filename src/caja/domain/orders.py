"""Orders and their charges, as the recurrent cash flow records them.

A store payment becomes one order holding one charge, both paid at once; a reversal inside the
window turns both to ``reversed``. The transitions are explicit tables: anything else raises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from caja.domain.errors import ProcessingError

CURRENCY = "MXN"


class ChargeStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    REVERSED = "reversed"


class OrderPaymentStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    REVERSED = "reversed"


CHARGE_TRANSITIONS: dict[ChargeStatus, frozenset[ChargeStatus]] = {
    ChargeStatus.PENDING_PAYMENT: frozenset({ChargeStatus.PAID}),
    ChargeStatus.PAID: frozenset({ChargeStatus.REVERSED}),
    ChargeStatus.REVERSED: frozenset(),
}

ORDER_TRANSITIONS: dict[OrderPaymentStatus, frozenset[OrderPaymentStatus]] = {
    OrderPaymentStatus.PENDING_PAYMENT: frozenset({OrderPaymentStatus.PAID}),
    OrderPaymentStatus.PAID: frozenset({OrderPaymentStatus.REVERSED}),
    OrderPaymentStatus.REVERSED: frozenset(),
}


class IllegalTransitionError(ProcessingError):
    @classmethod
    def of(cls, kind: str, object_id: str, before: str, after: str) -> IllegalTransitionError:
        return cls.with_detail(
            code=f"conekta.errors.processing.{kind}.invalid_transition",
            message_es=f"No es posible cambiar el estado de {before} a {after}.",
            message_en=f"The status cannot change from {before} to {after}.",
            debug_message=f"The {kind} {object_id} is {before}; it cannot become {after}.",
        )


@dataclass(frozen=True, slots=True)
class CashPaymentMethod:
    """Where and how a cash charge was paid (Conekta's ``cash_payment`` object)."""

    reference: str
    expires_at: int
    store_name: str
    store: str | None
    cashier_id: str | None
    auth_code: int


@dataclass(frozen=True, slots=True)
class PayerDetails:
    name: str
    email: str | None
    phone: str | None
    corporate: bool = False
    custom_reference: str = ""


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    account_id: str
    livemode: bool
    order_id: str
    customer_id: str
    payment_source_id: str
    network_id: str
    amount: int
    fee: int
    currency: str
    status: ChargeStatus
    payment_method: CashPaymentMethod
    payer: PayerDetails
    created_at: int
    updated_at: int
    paid_at: int | None = None
    reversed_at: int | None = None

    def moved_to(self, status: ChargeStatus, now: int) -> Charge:
        if status not in CHARGE_TRANSITIONS[self.status]:
            raise IllegalTransitionError.of("charge", self.id, self.status.value, status.value)
        changes: dict[str, Any] = {"status": status, "updated_at": now}
        if status is ChargeStatus.PAID:
            changes["paid_at"] = now
        if status is ChargeStatus.REVERSED:
            changes["reversed_at"] = now
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    account_id: str
    livemode: bool
    customer_id: str
    amount: int
    currency: str
    payment_status: OrderPaymentStatus
    payer: PayerDetails
    metadata: dict[str, Any]
    created_at: int
    updated_at: int
    charges: tuple[Charge, ...] = field(default=())

    def moved_to(self, status: OrderPaymentStatus, now: int) -> Order:
        if status not in ORDER_TRANSITIONS[self.payment_status]:
            raise IllegalTransitionError.of("order", self.id, self.payment_status.value, status.value)
        return replace(self, payment_status=status, updated_at=now)

    def with_charges(self, charges: tuple[Charge, ...]) -> Order:
        return replace(self, charges=charges)
