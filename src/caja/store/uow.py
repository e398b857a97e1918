"""The unit of work: one transaction, and the repositories that act inside it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self

from caja.store.accounts import AccountRepository
from caja.store.connection import Conn
from caja.store.customers import CustomerRepository
from caja.store.db import Database
from caja.store.events import EventRepository
from caja.store.payment_sources import PaymentSourceRepository
from caja.store.sequences import SequenceRepository


class UnitOfWork:
    """``async with uow_factory(write=True) as uow:`` opens one transaction and commits it on exit.

    Leaving the block by an exception rolls everything back, so a request either writes all of
    its rows and events or none of them. A write unit returns only once its commit is durable.
    """

    def __init__(self, database: Database, *, write: bool) -> None:
        self._database = database
        self._write = write
        self._unit: AbstractAsyncContextManager[Conn] | None = None

    @property
    def dialect(self) -> str:
        return self._database.dialect

    async def __aenter__(self) -> Self:
        self._unit = self._database.unit(write=self._write)
        conn = await self._unit.__aenter__()
        self.accounts = AccountRepository(conn)
        self.customers = CustomerRepository(conn)
        self.payment_sources = PaymentSourceRepository(conn)
        self.events = EventRepository(conn)
        self.sequences = SequenceRepository(conn)
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
        return await unit.__aexit__(exc_type, exc, tb)


class UnitOfWorkFactory:
    def __init__(self, database: Database) -> None:
        self.database = database

    def __call__(self, *, write: bool = False) -> UnitOfWork:
        return UnitOfWork(self.database, write=write)
