"""The convenience-store networks where a recurrent cash reference is paid (Conekta efectivo)."""

from __future__ import annotations

from typing import Final

CASH_PROVIDER: Final = "Cash"

# The networks Conekta lists for recurrent cash references, in the order of its own responses.
STORE_NAMES: Final[tuple[str, ...]] = (
    "7 Eleven",
    "Farmacias del Ahorro",
    "CIRCLE K",
    "Tiendas Extra",
    "Farmacia Benavides",
    "Soriana",
    "WALDO'S",
    "ELECZION",
    "Super Kiosko",
    "Farmacias Bazar",
    "Wolworth",
    "Del Sol",
    "Yepas",
    "Farmacias De Dios",
    "Farmacias Nosarco",
    "Farmacias Santa Cruz",
    "Farmacentro",
    "Farmacias GyM",
    "Farmacias San Francisco de Asis",
    "Farmacias Union",
    "Farmacias Zapotlan",
    "Farmatodo",
    "Al Super",
    "BBVA ATM",
)


# Agreement numbers a payer quotes at a bank branch or ATM instead of a store (Conekta's
# ``agreements`` field); Caja's own, documented in docs/api.md.
AGREEMENTS: Final[tuple[tuple[str, str], ...]] = (("bbva_cash_in", "2409526"),)
