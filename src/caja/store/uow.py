"""The unit of work: one transaction, and the repositories that act inside it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self

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
from caja.store.sealed import SealedValueRepository
from caja.store.sequences import SequenceRepository
from caja.store.webhook_keys import WebhookKeyRepository
from caja.store.webhooks import WebhookRepository


class UnitOfWork:
    """``async with uow_factory(write=True) as uow:`` opens one transaction and commits it on exit.

    Leaving the block by an exception rolls everything back, so a request either writes all of
    its rows and events or none of them. A write unit returns only once its commit is durable.
    """

    def __init__(
        self,
        database: Database,
        *,
        write: bool,
        notify: bool = False,
        on_commit: tuple[Callable[[], None], ...] = (),
    ) -> None:
        self._database = database
        self._write = write
        self._unit: AbstractAsyncContextManager[Conn] | None = None
        # A write unit that enqueued jobs (``tx.jobs.enqueue``, which the event fan-out uses) wakes
        # the commit listeners (dispatchers) once it has committed; ``notify`` forces that.
        self.notify = notify
        self._on_commit = on_commit

    @property
    def dialect(self) -> str:
        return self._database.dialect

    async def __aenter__(self) -> Self:
        self._unit = self._database.unit(write=self._write)
        conn = await self._unit.__aenter__()
        self.accounts = AccountRepository(conn)
        self.customers = CustomerRepository(conn)
        self.payment_sources = PaymentSourceRepository(conn)
        self.sequences = SequenceRepository(conn)
        self.jobs = JobRepository(conn)
        # The event fan-out enqueues deliveries through the job repository (and its count).
        self.events = EventRepository(conn, self.jobs)
        self.webhooks = WebhookRepository(conn)
        self.webhook_keys = WebhookKeyRepository(conn)
        self.deliveries = DeliveryRepository(conn)
        self.caught_emails = CaughtEmailRepository(conn)
        self.networks = NetworkRepository(conn)
        self.cash_payments = CashPaymentRepository(conn)
        self.orders = OrderRepository(conn)
        self.sealed = SealedValueRepository(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._unit is not None
        unit, self._unit = self._unit, None
        if exc_type is None:
            try:
                await self.events.flush()
            except BaseException as flush_error:
                await unit.__aexit__(type(flush_error), flush_error, flush_error.__traceback__)
                raise
        result = await unit.__aexit__(exc_type, exc, tb)
        if exc_type is None and self._write and (self.notify or self.jobs.enqueued):
            for callback in self._on_commit:
                callback()
        return result


class UnitOfWorkFactory:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._on_commit: tuple[Callable[[], None], ...] = ()

    def __call__(self, *, write: bool = False, notify: bool = False) -> UnitOfWork:
        return UnitOfWork(self.database, write=write, notify=notify, on_commit=self._on_commit)

    def add_commit_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each write unit that enqueued jobs commits (cheap, synchronous).

        The dispatcher listens, so jobs enqueued by this process start within milliseconds
        instead of at its next poll.
        """
        self._on_commit = (*self._on_commit, callback)

    def remove_commit_listener(self, callback: Callable[[], None]) -> None:
        self._on_commit = tuple(c for c in self._on_commit if c is not callback)
