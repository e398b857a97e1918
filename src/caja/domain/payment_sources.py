"""Reusable payment sources: recurrent cash references and recurrent SPEI CLABEs."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from caja.domain.errors import ParameterValidationError

DAY = 86_400
MIN_EXPIRY_DAYS = 1
MAX_EXPIRY_DAYS = 365
# A client computes "now + 1 day" on its own clock and the request takes time to arrive;
# five minutes of slack keeps such a request valid without widening the documented range.
EXPIRY_SLACK_SECONDS = 300
NEVER_EXPIRES = 0


class PaymentSourceType(enum.StrEnum):
    CASH_RECURRENT = "cash_recurrent"
    SPEI_RECURRENT = "spei_recurrent"


class PaymentSourceStatus(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


# Types Conekta knows that Caja, an offline-rails gateway, does not issue.
UNSUPPORTED_TYPES = frozenset({"card", "cash", "spei", "bnpl", "pay_by_bank", "oxxo_recurrent"})


@dataclass(frozen=True, slots=True)
class PaymentSource:
    id: str
    account_id: str
    livemode: bool
    customer_id: str
    type: PaymentSourceType
    reference: str
    expires_at: int
    status: PaymentSourceStatus
    created_at: int
    updated_at: int

    def is_expired(self, now: int) -> bool:
        return self.expires_at != NEVER_EXPIRES and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class NewPaymentSource:
    type: PaymentSourceType
    expires_at: int = NEVER_EXPIRES


def parse_type(value: str, param: str = "type") -> PaymentSourceType:
    try:
        return PaymentSourceType(value)
    except ValueError:
        why = (
            f"Caja issues only cash_recurrent and spei_recurrent payment sources, not {value!r}."
            if value in UNSUPPORTED_TYPES
            else f"Unknown payment source type {value[:40]!r}."
        )
        raise ParameterValidationError.invalid(param, why) from None


def check_expiry(expires_at: int, now: int, param: str = "expires_at") -> int:
    """``0`` means never; otherwise a moment from 1 to 365 days ahead of ``now``."""
    if expires_at == NEVER_EXPIRES:
        return NEVER_EXPIRES
    earliest = now + MIN_EXPIRY_DAYS * DAY - EXPIRY_SLACK_SECONDS
    latest = now + MAX_EXPIRY_DAYS * DAY + EXPIRY_SLACK_SECONDS
    if not earliest <= expires_at <= latest:
        raise ParameterValidationError.single(
            param,
            "out_of_range",
            "La fecha de expiración debe ser 0 (sin expiración) o estar entre 1 y 365 días en el futuro.",
            "The expiry must be 0 (never) or a date from 1 to 365 days ahead.",
            f'The "{param}" parameter must be 0 or an epoch between {earliest} and {latest}.',
        )
    return expires_at
