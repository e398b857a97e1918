"""Money is integer centavos everywhere; this module holds the few rules about it."""

from __future__ import annotations

from typing import NewType

Centavos = NewType("Centavos", int)

SUPPORTED_CURRENCIES = frozenset({"MXN"})
MAX_AMOUNT = Centavos(10_000_000_000)  # 100 million pesos: far above any cash or SPEI limit


def is_valid_amount(value: int) -> bool:
    return 0 < value <= MAX_AMOUNT


def format_mxn(amount: Centavos) -> str:
    """``123456`` -> ``$1,234.56 MXN``, as shown to payers."""
    pesos, cents = divmod(amount, 100)
    return f"${pesos:,}.{cents:02d} MXN"
