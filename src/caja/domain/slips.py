"""The payment slip ("ficha de pago") of a recurrent cash reference: what a payer takes to a store.

Pure content, shared by the HTML page and the PDF so both always say the same thing. There is no
amount on it: the reference is reusable and the merchant approves each amount when it is paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from caja.domain.payment_sources import NEVER_EXPIRES
from caja.domain.stores import AGREEMENTS, STORE_NAMES

# The payer names this service at the till (the networks list it under Conekta's name).
SERVICE_NAME: Final = "Conekta"

STEPS: Final[tuple[str, ...]] = (
    "Acude a cualquiera de las tiendas participantes que aparecen en esta ficha.",
    f"Indica al cajero que quieres hacer un pago de servicio «{SERVICE_NAME}» "
    "y dicta la referencia o muestra el código de barras.",
    "Dile cuánto quieres pagar y realiza el pago en efectivo.",
    "Conserva tu comprobante de pago: es tu respaldo. Recibirás la confirmación por correo electrónico.",
)

NOTES: Final[tuple[str, ...]] = (
    "Esta referencia es reutilizable: puedes pagar con ella todas las veces que lo necesites.",
    "La tienda puede cobrar una comisión por recibir el pago.",
)

# Agreement numbers payers quote at a bank instead of a store, by their ``provider`` in the API.
_BANKS: Final = {"bbva_cash_in": "Cajeros y practicajas BBVA"}


@dataclass(frozen=True, slots=True)
class BankAgreement:
    bank: str
    agreement: str


@dataclass(frozen=True, slots=True)
class Slip:
    source_id: str
    reference: str
    merchant_name: str
    # Epoch seconds, or ``NEVER_EXPIRES``.
    expires_at: int
    livemode: bool

    @property
    def expires(self) -> bool:
        return self.expires_at != NEVER_EXPIRES

    def is_expired(self, now: int) -> bool:
        return self.expires and self.expires_at <= now

    @property
    def grouped_reference(self) -> str:
        """``1000 1432 5295 9370 0513``: groups of four are easier to dictate and to type."""
        return " ".join(self.reference[i : i + 4] for i in range(0, len(self.reference), 4))

    @property
    def store_names(self) -> tuple[str, ...]:
        return STORE_NAMES

    @property
    def steps(self) -> tuple[str, ...]:
        return STEPS

    @property
    def notes(self) -> tuple[str, ...]:
        return NOTES

    @property
    def bank_agreements(self) -> tuple[BankAgreement, ...]:
        return tuple(BankAgreement(_BANKS.get(name, name), number) for name, number in AGREEMENTS)
