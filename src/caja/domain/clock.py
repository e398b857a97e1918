"""Where time comes from: one clock handed down from the composition root."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """The current time as integer epoch seconds."""
        ...

    def now_ms(self) -> int:
        """The current time as integer epoch milliseconds (job schedules, attempt timings)."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FixedClock:
    """A clock that only moves when told to: for tests and sandbox time travel."""

    def __init__(self, at: int) -> None:
        self._at = at

    def now(self) -> int:
        return self._at

    def now_ms(self) -> int:
        return self._at * 1000

    def advance(self, seconds: int) -> None:
        self._at += seconds
