"""Background jobs give way to the requests a server is answering.

A store waits at the till for Caja's answer; a payer reads the receipt e-mail minutes later. In
``caja serve`` both run on one event loop, and a receipt sent while payments are in flight takes
turns with them: at 64 stores paying at half of Caja's full-speed rate, a payment's median own
time was 18 ms with the receipts sent meanwhile and 11 ms with them held back until the run was
over (one run each, docs/performance.md). So jobs of a *background* kind (e-mail) run
through a ``BackgroundLane``: one at a time, each starting only at a moment when no request is
in flight (``Foreground``), unless it has already waited ``max_wait`` seconds, when it starts
anyway: a server that is never idle still sends its e-mail, a little later and in step with its
load. Webhooks are not background: merchants' systems act on them, and their delivery has a
latency target of its own.

A process that serves no requests (``caja worker``) has no lane: its jobs never wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class Foreground:
    """The requests this process is answering: how many are in flight, and who to tell when none is."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._on_idle: list[Callable[[], None]] = []

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            for callback in self._on_idle:
                callback()

    def on_idle(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (cheap, synchronous) each time the last request in flight ends."""
        self._on_idle.append(callback)


class BackgroundLane:
    """One background job at a time, started when the foreground is idle or after ``max_wait``.

    Waiters are served in order. A waiter whose ``max_wait`` runs out goes ahead without the
    lane (and without holding it), so a busy server delays background work by at most that long.
    """

    def __init__(self, foreground: Foreground, max_wait: float) -> None:
        self._foreground = foreground
        self.max_wait = max_wait
        self._held = False
        self._waiting: deque[asyncio.Future[None]] = deque()
        foreground.on_idle(self._hand_over)
        # How many turns were taken by waiting for an idle moment, and how many ran out of patience.
        self.waited = 0
        self.overdue = 0

    def _free(self) -> bool:
        return not self._held and self._foreground.in_flight == 0

    def _hand_over(self) -> None:
        while self._waiting and self._free():
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._held = True
                waiter.set_result(None)

    def _release(self) -> None:
        self._held = False
        self._hand_over()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for this job's turn; the body is the job's work."""
        holds = False
        if self._free() and not self._waiting:
            self._held = holds = True
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            self.waited += 1
            try:
                async with asyncio.timeout(self.max_wait):
                    await waiter
                holds = True
            except TimeoutError:
                # The lane may have been handed over in the same turn of the loop as the timeout.
                holds = waiter.done() and not waiter.cancelled()
                if not holds:
                    self.overdue += 1
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release()
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
        try:
            yield
        finally:
            if holds:
                self._release()
