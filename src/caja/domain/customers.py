"""Customers: the payer records that reusable references and CLABEs belong to."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from caja.domain.errors import ParameterValidationError
from caja.domain.payment_sources import NewPaymentSource, PaymentSource

MAX_METADATA_KEYS = 100
MAX_METADATA_CHARS = 32_768


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
    why = _unportable(metadata, depth=1)
    if why:
        raise ParameterValidationError.invalid(param, why)
    if metadata and len(json.dumps(metadata, ensure_ascii=False)) > MAX_METADATA_CHARS:
        raise ParameterValidationError.invalid(
            param, f"It may hold at most {MAX_METADATA_CHARS} characters of JSON."
        )


# Metadata is stored as JSON on every backend and rendered by orjson: values PostgreSQL or orjson
# cannot hold (NUL characters, lone surrogates, NaN and infinities, integers beyond 64 bits,
# very deep nesting) would fail after the write, or be silently changed, so they are refused.
MAX_METADATA_DEPTH = 20
_INT64 = 2**63


def _unportable(value: Any, depth: int) -> str | None:
    if depth > MAX_METADATA_DEPTH:
        return f"It may nest at most {MAX_METADATA_DEPTH} levels deep."
    if isinstance(value, str):
        if "\x00" in value:
            return "Text may not contain NUL characters."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "Text must be valid Unicode (no lone surrogates)."
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if -_INT64 <= value < _INT64 else "Integers must fit in 64 bits."
    if isinstance(value, float):
        return None if math.isfinite(value) else "Numbers must be finite (no NaN or Infinity)."
    if isinstance(value, dict):
        for key, item in value.items():
            why = _unportable(str(key), depth) or _unportable(item, depth + 1)
            if why:
                return why
        return None
    if isinstance(value, list | tuple):
        for item in value:
            why = _unportable(item, depth + 1)
            if why:
                return why
        return None
    return f"Unsupported value of type {type(value).__name__}."


def check_changes(changes: dict[str, Any]) -> None:
    """Reject a PUT that would blank a required field or name an unknown one."""
    for name, value in changes.items():
        if name not in UPDATABLE_FIELDS:
            raise ParameterValidationError.invalid(name, "This field cannot be updated.")
        if name in REQUIRED_FIELDS and value is None:
            raise ParameterValidationError.missing(name)
    if "metadata" in changes and changes["metadata"] is not None:
        check_metadata(changes["metadata"])
