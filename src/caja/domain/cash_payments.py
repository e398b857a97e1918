"""The rules of a store paying a recurrent cash reference: which references are payable, which amounts.

Pure decisions only; ``services/cash_payments.py`` gathers the facts (the source, the merchant's
answers) and records the outcome.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from caja.domain.approvals import ApprovalReply
from caja.domain.customers import Customer
from caja.domain.failure_codes import FailureCode
from caja.domain.payment_sources import PaymentSource, PaymentSourceStatus, PaymentSourceType
from caja.domain.pricing import CashPricing


@dataclass(frozen=True, slots=True)
class CashLimits:
    """What a store network accepts in one cash payment, whatever the merchant allows."""

    min_amount: int = 100  # $1.00 MXN
    max_amount: int = 1_000_000  # $10,000.00 MXN


@dataclass(frozen=True, slots=True)
class CashSettings:
    """The operator's terms for recurrent cash (``CAJA_CASH_*``, docs/operations.md)."""

    limits: CashLimits = field(default_factory=CashLimits)
    pricing: CashPricing = field(default_factory=CashPricing)
    # How long a payable lookup stays valid for the payment that follows (seconds).
    lookup_ttl: int = 600
    # How long after a payment the store may still reverse it (seconds).
    reversal_window: int = 86_400


@dataclass(frozen=True, slots=True)
class AmountRange:
    min_amount: int
    max_amount: int

    def __contains__(self, amount: int) -> bool:
        return self.min_amount <= amount <= self.max_amount


def check_reference(source: PaymentSource | None, customer: Customer | None, now: int) -> FailureCode | None:
    """Why a store may not take money for this reference, or None when it may ask the merchant.

    A CLABE is not a cash reference, so a store typing one learns only "not found" (``01``).
    """
    if source is None or source.type is not PaymentSourceType.CASH_RECURRENT:
        return FailureCode.REFERENCE_NOT_FOUND
    if customer is None or customer.deleted_at is not None:
        return FailureCode.REFERENCE_CANCELLED
    if source.status is not PaymentSourceStatus.ACTIVE:
        return FailureCode.REFERENCE_INACTIVE
    if source.is_expired(now):
        return FailureCode.REFERENCE_EXPIRED
    return None


def payable_range(reply: ApprovalReply, limits: CashLimits) -> AmountRange | FailureCode:
    """The range the store may collect: the merchant's, inside the network's limits.

    A merchant that approves but allows nothing (``max_amount`` 0) has no debt to collect (``10``);
    ranges that do not meet the network's limits cannot be paid at a store (``16``).
    """
    if reply.max_amount == 0:
        return FailureCode.NO_DEBT
    low = max(reply.min_amount or limits.min_amount, limits.min_amount)
    high = min(reply.max_amount if reply.max_amount is not None else limits.max_amount, limits.max_amount)
    if low > high:
        return FailureCode.AMOUNT_NOT_ALLOWED
    return AmountRange(low, high)


def check_amount(amount: int, allowed: AmountRange, limits: CashLimits) -> FailureCode | None:
    """``02``: no amount at all; ``16``: beyond the network's limits; ``35``: outside the merchant's range."""
    if amount <= 0:
        return FailureCode.INVALID_AMOUNT
    if amount > limits.max_amount or amount < limits.min_amount:
        return FailureCode.AMOUNT_NOT_ALLOWED
    if amount not in allowed:
        return FailureCode.AMOUNT_OUT_OF_RANGE
    return None


def new_auth_code() -> int:
    """Eight digits, like the seed's ``66685306``; made unique by the database, drawn again on a clash."""
    return 10_000_000 + secrets.randbelow(90_000_000)


def parse_amount(value: object) -> int | None:
    """``POST /payment_test`` sends ``"10000"`` (a string) in the seed; accept that or an integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


@dataclass(frozen=True, slots=True)
class CashLookup:
    """A store's payable lookup: the range the merchant approved for the payment that follows."""

    id: str
    network_id: str
    store: str
    reference: str
    account_id: str
    livemode: bool
    payment_source_id: str
    min_amount: int
    max_amount: int
    created_at: int
    expires_at: int
    charge_id: str | None = None

    @property
    def range(self) -> AmountRange:
        return AmountRange(self.min_amount, self.max_amount)


@dataclass(frozen=True, slots=True)
class StoreTransaction:
    """What a store was told about one of its transactions; a retry is told the same."""

    network_id: str
    transaction_id: str
    reference: str
    amount: int
    status: str  # "paid" or "declined"
    result: dict[str, object]
    charge_id: str | None
    created_at: int
