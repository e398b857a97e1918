"""The WAL's fsync thread: each fsync covers every request made before it began, and no other."""

from __future__ import annotations

import asyncio
import threading

import pytest

from caja.store.wal_sync import WalSyncer


class HeldSync:
    """An fsync stand-in that counts its calls and can be held inside a call."""

    def __init__(self) -> None:
        self.calls = 0
        self.inside = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_with: Exception | None = None

    def __call__(self) -> None:
        self.calls += 1
        self.inside.set()
        self.release.wait(10)
        if self.fail_with is not None:
            raise self.fail_with


async def test_requests_made_during_an_fsync_share_the_next_one() -> None:
    sync = HeldSync()
    syncer = WalSyncer(sync)
    loop = asyncio.get_running_loop()
    sync.release.clear()
    first = loop.create_future()
    syncer.request(first)
    await asyncio.to_thread(sync.inside.wait, 10)
    # These commits came after the running fsync began: it must not resolve them.
    later = [loop.create_future() for _ in range(5)]
    for future in later:
        syncer.request(future)
    await asyncio.sleep(0.05)
    assert not first.done() and not any(f.done() for f in later)
    sync.release.set()
    await asyncio.wait_for(first, 10)
    await asyncio.wait_for(asyncio.gather(*later), 10)
    assert sync.calls == 2  # one for the first, one for the five
    await syncer.stop()


async def test_a_failed_fsync_fails_every_request_it_covered_and_the_thread_goes_on() -> None:
    sync = HeldSync()
    syncer = WalSyncer(sync)
    loop = asyncio.get_running_loop()
    sync.fail_with = OSError(5, "Input/output error")
    waiting = [loop.create_future() for _ in range(3)]
    for future in waiting:
        syncer.request(future)
    for future in waiting:
        with pytest.raises(OSError):
            await asyncio.wait_for(future, 10)
    sync.fail_with = None
    after = loop.create_future()
    syncer.request(after)
    await asyncio.wait_for(after, 10)
    await syncer.stop()


async def test_stop_syncs_what_was_requested_and_a_later_request_starts_again() -> None:
    sync = HeldSync()
    syncer = WalSyncer(sync)
    loop = asyncio.get_running_loop()
    sync.release.clear()
    before = set(threading.enumerate())
    pending = loop.create_future()
    syncer.request(pending)
    (thread,) = set(threading.enumerate()) - before
    stopping = asyncio.ensure_future(syncer.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    sync.release.set()
    await asyncio.wait_for(stopping, 10)
    assert pending.result() is None
    assert not thread.is_alive()
    again = loop.create_future()
    syncer.request(again)
    await asyncio.wait_for(again, 10)
    assert sync.calls == 2
    await syncer.stop()


async def test_one_request_resolves_every_future_it_names() -> None:
    """A batch asks once for all its durable units, each waiting on a future of its own."""
    sync = HeldSync()
    syncer = WalSyncer(sync)
    loop = asyncio.get_running_loop()
    units = [loop.create_future() for _ in range(3)]
    units[1].cancel()  # its caller gave up: the others are resolved all the same
    syncer.request(*units)
    await asyncio.wait_for(asyncio.gather(units[0], units[2]), 10)
    assert sync.calls == 1
    assert units[1].cancelled()
    await syncer.stop()
