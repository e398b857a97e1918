"""Per-request time accounting: how long a request waited for the merchant, and for the database.

The network API reports it in a ``Server-Timing`` header (``merchant``, ``caja`` and ``db``), so an
aggregator, an operator or the benchmark can tell Caja's own overhead from the merchant's time,
and the part of Caja's own time that its units of work took (the writer's turn, the commit and
its fsync included) from the rest. A context variable carries the tally from the HTTP edge down
to the approval client and the unit of work without threading it through every service signature.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(slots=True)
class RequestTiming:
    merchant_seconds: float = 0.0
    merchant_calls: int = 0
    store_seconds: float = 0.0


_current: contextvars.ContextVar[RequestTiming | None] = contextvars.ContextVar(
    "request_timing", default=None
)


def start() -> RequestTiming:
    tally = RequestTiming()
    _current.set(tally)
    return tally


def current() -> RequestTiming | None:
    """The tally of the request this code runs for, if it is being timed."""
    return _current.get()


def add_merchant_time(seconds: float) -> None:
    tally = _current.get()
    if tally is not None:
        tally.merchant_seconds += seconds
        tally.merchant_calls += 1


def detached() -> contextvars.Context:
    """A context with no tally, for a background task started while a request is timed: a task
    copies the context it is created in, and its work must not count as the request's."""
    context = contextvars.copy_context()
    context.run(_current.set, None)
    return context
