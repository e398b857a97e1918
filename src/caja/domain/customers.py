"""Customers: the payer records that reusable references and CLABEs belong to."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from caja.domain.errors import ParameterValidationError
from caja.domain.payment_sources import NewPaymentSource, PaymentSource

MAX_METADATA_KEYS = 100


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    account_id: str
    livemode: bool
    name: str
    email: str | None
    phone: str | None
    corporate: bool
    custom_reference: str
    date_of_birth: str | None
    national_id: str | None
    metadata: dict[str, Any]
    antifraud_info: dict[str, int] | None
    default_payment_source_id: str | None
    created_at: int
    updated_at: int
    deleted_at: int | None = None
    payment_sources: tuple[PaymentSource, ...] = ()

    def with_sources(self, sources: tuple[PaymentSource, ...]) -> Customer:
        return replace(self, payment_sources=sources)


@dataclass(frozen=True, slots=True)
class NewCustomer:
    name: str
    email: str | None
    phone: str | None = None
    corporate: bool = False
    custom_reference: str = ""
    date_of_birth: str | None = None
    national_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    antifraud_info: dict[str, int] | None = None
    default_payment_source_id: str | None = None
    payment_sources: tuple[NewPaymentSource, ...] = ()


# The customer fields a PUT may change; a value of None for an optional field clears it.
UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "email",
        "phone",
        "corporate",
        "custom_reference",
        "date_of_birth",
        "national_id",
        "metadata",
        "antifraud_info",
        "default_payment_source_id",
    }
)
REQUIRED_FIELDS = frozenset({"name", "email"})


def check_metadata(metadata: dict[str, Any], param: str = "metadata") -> None:
    if len(metadata) > MAX_METADATA_KEYS:
        raise ParameterValidationError.invalid(param, f"At most {MAX_METADATA_KEYS} keys are allowed.")


def check_changes(changes: dict[str, Any]) -> None:
    """Reject a PUT that would blank a required field or name an unknown one."""
    for name, value in changes.items():
        if name not in UPDATABLE_FIELDS:
            raise ParameterValidationError.invalid(name, "This field cannot be updated.")
        if name in REQUIRED_FIELDS and value is None:
            raise ParameterValidationError.missing(name)
    if "metadata" in changes and changes["metadata"] is not None:
        check_metadata(changes["metadata"])
