"""The unit of work: one transaction, and the repositories that act inside it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from caja.store.accounts import AccountRepository
from caja.store.customers import CustomerRepository
from caja.store.db import Database
from caja.store.events import EventRepository
from caja.store.payment_sources import PaymentSourceRepository
from caja.store.sequences import SequenceRepository


class UnitOfWork:
    """``async with uow_factory(write=True) as uow:`` opens one transaction and commits it on exit.

    Leaving the block by an exception rolls everything back, so a request either writes all of
    its rows and events or none of them.
    """

    def __init__(self, database: Database, *, write: bool) -> None:
        self._database = database
        self._write = write
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self._locked = False

    @property
    def dialect(self) -> str:
        return self._database.dialect

    async def __aenter__(self) -> Self:
        lock = self._database.write_lock if self._write else None
        if lock is not None:
            await lock.acquire()
            self._locked = True
        try:
            self._conn = await self._database.connect(write=self._write)
            self._tx = await self._conn.begin()
        except BaseException:
            await self._release()
            raise
        conn = self._conn
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
    ) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                if exc_type is None:
                    await self._tx.commit()
                else:
                    await self._tx.rollback()
        finally:
            await self._release()

    async def _release(self) -> None:
        try:
            if self._conn is not None:
                await self._conn.close()
        finally:
            self._conn = None
            if self._locked and self._database.write_lock is not None:
                self._database.write_lock.release()
                self._locked = False


class UnitOfWorkFactory:
    def __init__(self, database: Database) -> None:
        self.database = database

    def __call__(self, *, write: bool = False) -> UnitOfWork:
        return UnitOfWork(self.database, write=write)
