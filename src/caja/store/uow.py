"""The unit of work: one transaction, and the repositories that act inside it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import cached_property
from time import perf_counter
from types import TracebackType
from typing import Self

from caja import timing
from caja.store.accounts import AccountRepository
from caja.store.cash_payments import CashPaymentRepository
from caja.store.caught_emails import CaughtEmailRepository
from caja.store.connection import Conn
from caja.store.customers import CustomerRepository
from caja.store.db import Database
from caja.store.deliveries import DeliveryRepository
from caja.store.events import EventRepository
from caja.store.jobs import JobRepository
from caja.store.networks import NetworkRepository
from caja.store.orders import OrderRepository
from caja.store.payment_sources import PaymentSourceRepository
from caja.store.payment_writes import PaymentWriteRepository
from caja.store.retention import RetentionRepository
from caja.store.sealed import SealedValueRepository
from caja.store.sequences import SequenceRepository
from caja.store.webhook_keys import WebhookKeyRepository
from caja.store.webhooks import WebhookRepository

# Told, once a write unit that enqueued jobs has committed, the kinds of the jobs it enqueued.
CommitListener = Callable[[frozenset[str]], None]


class UnitOfWork:
    """``async with uow_factory(write=True) as uow:`` opens one transaction and commits it on exit.

    Leaving the block by an exception rolls everything back, so a request either writes all of
    its rows and events or none of them. A write unit returns only once its commit is durable
    (unless made ``durable=False``).
    """

    def __init__(
        self,
        database: Database,
        *,
        write: bool,
        notify: bool = False,
        single_statement: bool = False,
        snapshot: bool = True,
        durable: bool = True,
        prompt: bool = False,
        on_commit: tuple[CommitListener, ...] = (),
        on_webhooks_changed: tuple[Callable[[], None], ...] = (),
    ) -> None:
        self._database = database
        self._write = write
        self._single_statement = single_statement
        self._snapshot = snapshot
        self._durable = durable
        self._prompt = prompt
        self._unit: AbstractAsyncContextManager[Conn] | None = None
        self._conn: Conn
        # A write unit that enqueued jobs (``tx.jobs.enqueue``, which the event fan-out uses) wakes
        # the commit listeners (dispatchers) once it has committed; ``notify`` forces that.
        self.notify = notify
        self._on_commit = on_commit
        self._on_webhooks_changed = on_webhooks_changed
        self._timing: timing.RequestTiming | None = None
        self._entered = 0.0

    @property
    def dialect(self) -> str:
        return self._database.dialect

    async def __aenter__(self) -> Self:
        # A timed request (the network API's) counts its time in units of work, waits included.
        self._timing = timing.current()
        if self._timing is not None:
            self._entered = perf_counter()
        self._unit = self._database.unit(
            write=self._write,
            single_statement=self._single_statement,
            snapshot=self._snapshot,
            durable=self._durable,
            prompt=self._prompt,
        )
        try:
            self._conn = await self._unit.__aenter__()
        except BaseException:
            self._count_time()
            raise
        return self

    def _count_time(self) -> None:
        if self._timing is not None:
            self._timing.store_seconds += perf_counter() - self._entered

    # Repositories are made on first use: a unit uses two or three of them, and a request opens
    # several units.
    @cached_property
    def accounts(self) -> AccountRepository:
        return AccountRepository(self._conn)

    @cached_property
    def customers(self) -> CustomerRepository:
        return CustomerRepository(self._conn)

    @cached_property
    def payment_sources(self) -> PaymentSourceRepository:
        return PaymentSourceRepository(self._conn)

    @cached_property
    def sequences(self) -> SequenceRepository:
        return SequenceRepository(self._conn)

    @cached_property
    def jobs(self) -> JobRepository:
        return JobRepository(self._conn)

    @cached_property
    def events(self) -> EventRepository:
        # The event fan-out enqueues deliveries through the job repository (and its count).
        return EventRepository(self._conn, self.jobs)

    @cached_property
    def webhooks(self) -> WebhookRepository:
        return WebhookRepository(self._conn)

    @cached_property
    def webhook_keys(self) -> WebhookKeyRepository:
        return WebhookKeyRepository(self._conn)

    @cached_property
    def deliveries(self) -> DeliveryRepository:
        return DeliveryRepository(self._conn)

    @cached_property
    def caught_emails(self) -> CaughtEmailRepository:
        return CaughtEmailRepository(self._conn)

    @cached_property
    def networks(self) -> NetworkRepository:
        return NetworkRepository(self._conn)

    @cached_property
    def cash_payments(self) -> CashPaymentRepository:
        return CashPaymentRepository(self._conn)

    @cached_property
    def orders(self) -> OrderRepository:
        return OrderRepository(self._conn)

    @cached_property
    def payment_writes(self) -> PaymentWriteRepository:
        return PaymentWriteRepository(self._conn, self.cash_payments, self.orders, self.events, self.jobs)

    @cached_property
    def sealed(self) -> SealedValueRepository:
        return SealedValueRepository(self._conn)

    @cached_property
    def retention(self) -> RetentionRepository:
        return RetentionRepository(self._conn)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._unit is not None
        unit, self._unit = self._unit, None
        try:
            # Only a unit that added events has any to write.
            if exc_type is None and "events" in self.__dict__:
                try:
                    await self.events.flush()
                except BaseException as flush_error:
                    await unit.__aexit__(type(flush_error), flush_error, flush_error.__traceback__)
                    raise
            result = await unit.__aexit__(exc_type, exc, tb)
        finally:
            self._count_time()
        if exc_type is None and self._write:
            kinds = frozenset(self.jobs.enqueued_kinds) if "jobs" in self.__dict__ else frozenset()
            if self.notify or kinds:
                for listener in self._on_commit:
                    listener(kinds)
            if "webhooks" in self.__dict__ and self.webhooks.changed:
                for callback in self._on_webhooks_changed:
                    callback()
        return result


class UnitOfWorkFactory:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._on_commit: tuple[CommitListener, ...] = ()
        self._on_webhooks_changed: tuple[Callable[[], None], ...] = ()

    def __call__(
        self,
        *,
        write: bool = False,
        notify: bool = False,
        single_statement: bool = False,
        snapshot: bool = True,
        durable: bool = True,
        prompt: bool = False,
    ) -> UnitOfWork:
        """A unit; ``single_statement``: a read that runs exactly one statement (no transaction on
        PostgreSQL, which saves two round trips; a second statement raises); ``snapshot=False``: a
        read of several statements that need not see one moment (no transaction either);
        ``durable=False``: a write that a crash may lose because it would be redone (the
        dispatcher's bookkeeping), which on SQLite returns without waiting for an fsync and may
        wait a moment to share another writer's transaction; ``prompt``: one that must not wait
        to share (a caller waits for it, as for a store's lookup; or it would lengthen the
        transaction it joined, as the approval calls' log would a payment's)."""
        return UnitOfWork(
            self.database,
            write=write,
            notify=notify,
            single_statement=single_statement,
            snapshot=snapshot,
            durable=durable,
            prompt=prompt,
            on_commit=self._on_commit,
            on_webhooks_changed=self._on_webhooks_changed,
        )

    def add_commit_listener(self, callback: CommitListener) -> None:
        """Call ``callback(kinds)`` after each write unit that enqueued jobs commits (cheap,
        synchronous), with the kinds of the jobs it enqueued (none when the unit was made with
        ``notify=True`` and enqueued nothing).

        The dispatcher listens, so jobs enqueued by this process start within milliseconds
        instead of at its next poll.
        """
        self._on_commit = (*self._on_commit, callback)

    def remove_commit_listener(self, callback: CommitListener) -> None:
        self._on_commit = tuple(c for c in self._on_commit if c is not callback)

    def add_webhooks_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each unit of this process that changed webhooks commits, so
        caches of them (the approval client's) drop what they hold at once."""
        self._on_webhooks_changed = (*self._on_webhooks_changed, callback)
