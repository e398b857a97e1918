"""Cross-process wake-ups on PostgreSQL: ``NOTIFY`` when this process commits jobs, ``LISTEN`` in dispatchers.

Within one process the unit of work's commit listener wakes the dispatcher directly. Separate
``caja worker`` processes would otherwise find new jobs only at their next poll; with this, an
API process that commits jobs sends ``NOTIFY caja_jobs`` (at most one in flight, coalesced) and
every listening dispatcher looks at once. Best effort: polling still finds everything if a
notification is lost or the listening connection drops (it is reopened).

Two kinds of commit send nothing, as within one process they wake nobody: a commit of
background jobs alone (a payment's receipt), which every dispatcher claims at its next poll
with the others committed meanwhile; and, on the listening side, a process's own notification,
whose commit its own dispatcher already heard of directly. Each payment on PostgreSQL otherwise
cost a NOTIFY round trip, its echo, and a claim of its receipt alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger("caja.delivery.wakeups")

CHANNEL = "caja_jobs"
_RECONNECT_SECONDS = 2.0


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgWakeups:
    def __init__(self, url: str, quiet_kinds: frozenset[str] = frozenset()) -> None:
        """``quiet_kinds``: job kinds whose commit alone notifies no one (background jobs)."""
        self._dsn = asyncpg_dsn(url)
        self._quiet_kinds = quiet_kinds
        self._sender: Any = None
        self._sender_pid: int | None = None
        self._sending: asyncio.Task[None] | None = None
        self._again = False
        self._listener: Any = None
        self._watch: asyncio.Task[None] | None = None
        self._closed = False

    # -- sending ---------------------------------------------------------------------------------

    def notify_soon(self, kinds: frozenset[str] = frozenset()) -> None:
        """A commit listener: tell other processes' dispatchers that jobs (of any kind) were committed."""
        if self._closed or (kinds and kinds <= self._quiet_kinds):
            return
        if self._sending is not None and not self._sending.done():
            self._again = True
            return
        self._sending = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while True:
            self._again = False
            try:
                if self._sender is None or self._sender.is_closed():
                    self._sender = await asyncpg.connect(self._dsn, timeout=5)
                    self._sender_pid = self._sender.get_server_pid()
                await self._sender.execute(f"NOTIFY {CHANNEL}")
            except Exception as exc:
                log.debug("could not notify dispatchers (they will poll)", error=repr(exc))
                await self._close_sender()
                return
            if not self._again or self._closed:
                return

    async def _close_sender(self) -> None:
        sender, self._sender = self._sender, None
        self._sender_pid = None
        if sender is not None:
            with contextlib.suppress(Exception):
                await sender.close(timeout=2)

    # -- listening -------------------------------------------------------------------------------

    async def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on every notification, reconnecting when the connection drops."""
        self._watch = asyncio.create_task(self._keep_listening(callback), name="caja wake-ups")

    async def _keep_listening(self, callback: Callable[[], None]) -> None:
        def on_notify(_connection: object, pid: int, _channel: str, _payload: object) -> None:
            if pid != self._sender_pid:  # our own: this process's dispatcher heard of it already
                callback()

        while not self._closed:
            if self._listener is None or self._listener.is_closed():
                try:
                    self._listener = await asyncpg.connect(self._dsn, timeout=5)
                    await self._listener.add_listener(CHANNEL, on_notify)
                    callback()  # anything committed while not listening
                except Exception as exc:
                    log.warning("cannot listen for job notifications; polling only", error=repr(exc))
                    self._listener = None
            await asyncio.sleep(_RECONNECT_SECONDS)

    async def close(self) -> None:
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._sending is not None:
            with contextlib.suppress(Exception):
                await self._sending
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)
        await self._close_sender()
