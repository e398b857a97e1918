"""What Caja keeps from each cash payment: a percentage plus a fixed amount, plus VAT on that fee.

The default (2.9% + $2.00 MXN, plus 16% IVA) reproduces the fee of the seed's sandbox example:
20,000 centavos → 905. Operators set their own with ``CAJA_CASH_FEE_*`` (docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass

BASIS_POINTS = 10_000


@dataclass(frozen=True, slots=True)
class CashPricing:
    rate_bp: int = 290  # 2.9%
    fixed: int = 200  # centavos
    tax_bp: int = 1_600  # 16% IVA on the fee

    def fee(self, amount: int) -> int:
        """Integer centavos, rounded half up, never more than the amount itself."""
        # Everything scaled by BASIS_POINTS² so the only rounding is the last one.
        scaled = (amount * self.rate_bp + self.fixed * BASIS_POINTS) * (BASIS_POINTS + self.tax_bp)
        unit = BASIS_POINTS * BASIS_POINTS
        fee = (scaled + unit // 2) // unit
        return min(fee, amount)
