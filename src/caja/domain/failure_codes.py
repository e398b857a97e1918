"""The decline codes a store cashier sees for a recurrent cash reference.

Seed page 000, "Códigos de rechazo".

Caja answers a store's lookup or payment with ``payable: false`` and one of these codes; a
merchant's synchronous webhook may answer with any of them too. Where each one arises in Caja is
listed in docs/network-api.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FailureCode(enum.StrEnum):
    REFERENCE_NOT_FOUND = "01"
    INVALID_AMOUNT = "02"
    REFERENCE_EXPIRED = "03"
    NO_DEBT = "10"
    REFERENCE_INACTIVE = "13"
    REFERENCE_CANCELLED = "14"
    USER_BLOCKED = "15"
    AMOUNT_NOT_ALLOWED = "16"
    OUTSIDE_BUSINESS_HOURS = "18"
    NOT_AUTHORIZED = "19"
    AMOUNT_OUT_OF_RANGE = "35"
    ALREADY_PAID = "36"


@dataclass(frozen=True, slots=True)
class FailureDescription:
    code: FailureCode
    message_es: str
    message_en: str


FAILURE_DESCRIPTIONS: dict[FailureCode, FailureDescription] = {
    d.code: d
    for d in (
        FailureDescription(
            FailureCode.REFERENCE_NOT_FOUND, "Referencia no encontrada", "Reference not found"
        ),
        FailureDescription(FailureCode.INVALID_AMOUNT, "Cantidad inválida", "Invalid amount"),
        FailureDescription(FailureCode.REFERENCE_EXPIRED, "Referencia expirada", "Reference expired"),
        FailureDescription(FailureCode.NO_DEBT, "Referencia sin deuda", "Nothing is owed on this reference"),
        FailureDescription(FailureCode.REFERENCE_INACTIVE, "Referencia inactiva", "Reference inactive"),
        FailureDescription(FailureCode.REFERENCE_CANCELLED, "Referencia cancelada", "Reference cancelled"),
        FailureDescription(FailureCode.USER_BLOCKED, "Usuario bloqueado", "User blocked"),
        FailureDescription(FailureCode.AMOUNT_NOT_ALLOWED, "Cantidad no permitida", "Amount not allowed"),
        FailureDescription(
            FailureCode.OUTSIDE_BUSINESS_HOURS, "Comercio fuera de horario", "Merchant outside business hours"
        ),
        FailureDescription(FailureCode.NOT_AUTHORIZED, "No autorizado", "Not authorized"),
        FailureDescription(
            FailureCode.AMOUNT_OUT_OF_RANGE,
            "Monto fuera del rango permitido",
            "Amount outside the allowed range",
        ),
        FailureDescription(FailureCode.ALREADY_PAID, "Referencia ya pagada", "Reference already paid"),
    )
}


def from_merchant(code: str | None) -> FailureCode:
    """A merchant's decline code as the store sees it.

    The table is what store terminals know, so a code outside it (or none at all) becomes
    ``19`` (not authorized); the merchant's own code stays in Caja's approval log.
    """
    if code is None:
        return FailureCode.NOT_AUTHORIZED
    try:
        return FailureCode(code)
    except ValueError:
        return FailureCode.NOT_AUTHORIZED
