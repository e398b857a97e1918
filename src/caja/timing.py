"""Per-request time accounting: how long a request spent waiting for a merchant's approval endpoint.

The network API reports it in a ``Server-Timing`` header (``merchant`` and ``caja``), so an
aggregator, an operator or the benchmark can tell Caja's own overhead from the merchant's time.
A context variable carries the tally from the HTTP edge down to the approval client without
threading it through every service signature.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass
class MerchantTime:
    seconds: float = 0.0
    calls: int = 0


_current: contextvars.ContextVar[MerchantTime | None] = contextvars.ContextVar("merchant_time", default=None)


def start() -> MerchantTime:
    tally = MerchantTime()
    _current.set(tally)
    return tally


def add_merchant_time(seconds: float) -> None:
    tally = _current.get()
    if tally is not None:
        tally.seconds += seconds
        tally.calls += 1
