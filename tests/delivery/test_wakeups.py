"""PostgreSQL's cross-process wake-ups: who is told of a commit, against a real server."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

import pytest

from caja.delivery import wakeups
from caja.delivery.wakeups import PgWakeups
from tests.conftest import postgres_url

QUIET = frozenset({"email"})


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_other_processes_hear_of_jobs_but_not_of_receipts_alone_nor_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A channel of this test's own: other tests on the same database cannot be heard here.
    monkeypatch.setattr(wakeups, "CHANNEL", f"caja_jobs_test_{secrets.token_hex(4)}")
    api, worker = PgWakeups(postgres_url(), QUIET), PgWakeups(postgres_url(), QUIET)
    heard_by_api: list[int] = []
    heard_by_worker: list[int] = []
    await api.listen(lambda: heard_by_api.append(1))
    await worker.listen(lambda: heard_by_worker.append(1))
    try:
        # Each calls back once on connecting ("anything committed while not listening").
        await _until(lambda: len(heard_by_api) == 1 and len(heard_by_worker) == 1)
        heard_by_api.clear()
        heard_by_worker.clear()

        api.notify_soon(frozenset({"webhook"}))
        await _until(lambda: len(heard_by_worker) == 1)
        await asyncio.sleep(0.3)
        assert heard_by_api == []  # its own dispatcher was woken by the commit itself

        api.notify_soon(frozenset({"email"}))  # a receipt alone: picked up at the next poll
        await asyncio.sleep(0.3)
        assert len(heard_by_worker) == 1

        api.notify_soon(frozenset({"email", "webhook"}))
        await _until(lambda: len(heard_by_worker) == 2)
        worker.notify_soon(frozenset({"webhook"}))
        await _until(lambda: len(heard_by_api) == 1)
    finally:
        await api.close()
        await worker.close()
