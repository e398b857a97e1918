"""Admission of store calls to the event loop: the calls already started go first.

One event loop shares its core among every call in flight, one step (up to its next ``await``)
at a time, so a call that has started is slowed by every call that arrives after it: much like
a processor-sharing queue, where each call's time grows with the number in flight. A gate of a
few slots lets a new call start only when fewer than ``slots`` started calls are at work;
a call waiting for the merchant gives its slot up meanwhile (``Away``), and takes it back at once
when the answer comes, ahead of the calls still waiting to start. So the calls in flight finish
before new ones begin, as in a first-come-first-served queue, and a merchant slow to answer never
holds the gate. Once ``FLOOD`` calls wait, the loop is saturated and the gate lets them all in:
calls at work together share their commits, which keeps the full-speed rate.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from types import TracebackType

# This many calls waiting means a saturated loop: they are all let in at once (see Gate.enter).
FLOOD = 16


class Gate:
    __slots__ = ("_busy", "_flood", "_slots", "_waiting")

    def __init__(self, slots: int, flood: int = FLOOD) -> None:
        """``slots``: calls at work at once; 0, no limit (every call starts at once)."""
        self._slots = slots
        self._flood = flood
        self._busy = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def enter(self) -> None:
        """Wait for a slot, behind the calls that came before."""
        if self._slots == 0 or (self._busy < self._slots and not self._waiting):
            self._busy += 1
            return
        if len(self._waiting) + 1 >= self._flood:
            # Saturated: the calls would queue here whatever the order, and calls at work
            # together share their commits (SQLite's batches, PostgreSQL's WAL flushes); a
            # gate that kept them two at a time cost 18% of the full-speed payment rate.
            while self._waiting:
                self._pass_turn(self._waiting.popleft())
            self._busy += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.leave()  # the slot was handed over as the caller gave up: pass it on
            else:
                self._waiting.remove(turn)
            raise

    def resume(self) -> None:
        """Take a slot back after waiting outside: never waits (started calls go first)."""
        self._busy += 1

    def leave(self) -> None:
        self._busy -= 1
        while self._busy < self._slots and self._waiting:
            self._pass_turn(self._waiting.popleft())

    def _pass_turn(self, turn: asyncio.Future[None]) -> None:
        if not turn.done():
            self._busy += 1
            turn.set_result(None)


_current: contextvars.ContextVar[Gate | None] = contextvars.ContextVar("admission_gate", default=None)


class Admitted:
    """``async with Admitted(gate):`` a store call's work, holding one of the gate's slots."""

    __slots__ = ("_gate", "_token")

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._token: contextvars.Token[Gate | None] | None = None

    async def __aenter__(self) -> None:
        await self._gate.enter()
        self._token = _current.set(self._gate)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
        self._gate.leave()


class Away:
    """``with Away():`` a wait outside Caja (the merchant's answer), with the caller's slot given up.

    A call gives its slot up once, however many waits it nests or runs at once: inside, no slot is
    held, so an ``Away`` within (or in a task started within, such as one per merchant webhook)
    gives nothing up again.
    """

    __slots__ = ("_gate", "_token")

    def __init__(self) -> None:
        self._gate = _current.get()
        self._token: contextvars.Token[Gate | None] | None = None

    def __enter__(self) -> None:
        if self._gate is not None:
            self._gate.leave()
            self._token = _current.set(None)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._gate is not None:
            if self._token is not None:
                _current.reset(self._token)
            self._gate.resume()
