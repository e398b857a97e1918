"""PostgreSQL through asyncpg: a pooled connection and a transaction per unit of work.

PostgreSQL groups concurrent commits into shared WAL flushes itself, so each unit simply commits.

SQLAlchemy's engine owns the pool (connections, their JSON codecs, invalidation) and runs Core
statements, but a unit drives its transaction and its ``Prepared`` statements on the asyncpg
connection directly: measured, SQLAlchemy's async layer (a greenlet per call, its connection,
transaction and result objects) cost more CPU per unit than the database calls themselves. The
SQLAlchemy connection is only made, over the same pooled connection and inside the same
transaction, when a unit runs its first Core statement.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from caja.domain.errors import ServiceUnavailableError
from caja.store.connection import json_dumps, json_loads
from caja.store.prepared import Prepared, Rows

# asyncpg's names for the isolation levels of ``Connection.transaction``.
_READ_UNIT = {"isolation": "repeatable_read", "readonly": True}
_WRITE_UNIT: dict[str, Any] = {}
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresBackend:
    def __init__(self, url: str, pool_size: int = 20, pool_timeout: float = 30.0) -> None:
        # No overflow: SQLAlchemy closes an overflow connection as soon as it comes back to a full
        # pool, so a load just above the pool's size opened and closed a connection (TCP, start-up,
        # the JSON codecs' type introspection) every few units; measured, that was a third of a
        # GET /customers/{id}'s CPU at 32 concurrent requests. Past the pool's size a unit waits
        # for a connection instead; no unit ever holds one while it waits for another.
        self.engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=pool_timeout,
            json_serializer=json_dumps,
            json_deserializer=json_loads,
        )

    def write_unit(
        self, *, durable: bool = True, prompt: bool = False, single_statement: bool = False
    ) -> PgUnit:
        del durable, prompt  # every commit waits for its WAL flush, which PostgreSQL shares among commits
        # A write of one statement needs no BEGIN and COMMIT: the statement commits by itself,
        # all of it or nothing, and its commit waits for the WAL flush like any other.
        if single_statement:
            return PgUnit(self.engine, None, single_statement=True)
        return PgUnit(self.engine, _WRITE_UNIT)

    def read_unit(self, *, single_statement: bool = False, snapshot: bool = True) -> PgUnit:
        # REPEATABLE READ READ ONLY: one consistent snapshot for every query of the unit. A read of
        # one statement is consistent by itself, and skips the BEGIN and COMMIT round trips (on a
        # GET /customers/{id}, a third of the request's CPU); so does a read whose statements
        # need no common snapshot (each runs in its own).
        return PgUnit(self.engine, None if single_statement or not snapshot else _READ_UNIT, single_statement)

    async def run_sync(self, fn: Any) -> Any:
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn)

    async def dispose(self) -> None:
        await self.engine.dispose()


class PgUnit:
    """One unit of work: checks a connection out, BEGINs, and COMMITs or rolls back on exit.

    A plain async context manager rather than ``@asynccontextmanager``, whose generator machinery
    showed up in the profile of every unit.
    """

    __slots__ = ("_conn", "_engine", "_options", "_single_statement")

    def __init__(
        self, engine: AsyncEngine, options: dict[str, Any] | None, single_statement: bool = False
    ) -> None:
        self._engine = engine
        self._options = options
        self._single_statement = single_statement
        self._conn: PgConn | None = None

    async def __aenter__(self) -> PgConn:
        try:
            fairy = await self._engine.raw_connection()
        except sa.exc.TimeoutError:
            # Every connection stayed busy for the pool's timeout: an overload, not a bug (503).
            raise ServiceUnavailableError.busy() from None
        conn = PgConn(self._engine, fairy, single_statement=self._single_statement)
        if self._options is None:
            self._conn = conn
            return conn
        try:
            await conn.begin(self._options)
        except BaseException:
            await asyncio.shield(conn.release(failed=True))
            raise
        self._conn = conn
        return conn

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        if exc_type is None:
            try:
                if conn.in_transaction:
                    await conn.commit()
            except BaseException:
                await asyncio.shield(conn.release(failed=True))
                raise
            await conn.release(failed=False)
        else:
            await asyncio.shield(conn.release(failed=True))


class PgConn:
    """A unit's connection: ``Prepared`` statements and the transaction on asyncpg, Core statements
    through a SQLAlchemy connection made on first use over the same pooled connection."""

    __slots__ = (
        "_adapted",
        "_dialect",
        "_driver",
        "_engine",
        "_fairy",
        "_sa",
        "_statements_left",
        "_transaction",
    )

    def __init__(self, engine: AsyncEngine, fairy: Any, *, single_statement: bool = False) -> None:
        self._engine = engine
        self._dialect: Dialect = engine.dialect
        self._fairy = fairy
        # SQLAlchemy's DBAPI adaptor of the asyncpg connection, and the asyncpg connection itself.
        self._adapted: Any = fairy.dbapi_connection
        self._driver: asyncpg.Connection = fairy.driver_connection
        self._sa: AsyncConnection | None = None
        self._transaction: Any = None
        # Without a transaction, a second statement would read another snapshot: refused.
        self._statements_left = 1 if single_statement else -1

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def in_transaction(self) -> bool:
        return self._transaction is not None

    def _count_statement(self) -> None:
        if self._statements_left == 0:
            raise RuntimeError("a single-statement read unit ran a second statement")
        self._statements_left -= 1

    async def begin(self, options: dict[str, Any]) -> None:
        transaction = self._driver.transaction(**options)
        try:
            await transaction.start()
        except _DRIVER_ERRORS as error:
            raise self._translate(error, "BEGIN", None) from error
        self._transaction = transaction
        # SQLAlchemy's adaptor BEGINs lazily before its first statement unless it holds a
        # transaction already: hand it this one, so Core statements run inside it.
        self._adapted._transaction = transaction

    async def commit(self) -> None:
        transaction, self._transaction = self._transaction, None
        self._adapted._transaction = None
        try:
            await transaction.commit()
        except _DRIVER_ERRORS as error:
            raise self._translate(error, "COMMIT", None) from error

    async def release(self, *, failed: bool) -> None:
        """Back to the pool; after a failure, roll back first, or drop the connection if that fails."""
        broken = False
        if failed:
            transaction, self._transaction = self._transaction, None
            self._adapted._transaction = None
            try:
                if transaction is not None:
                    await transaction.rollback()
                broken = self._driver.is_closed() or self._driver.is_in_transaction()
            except BaseException:
                broken = True
        sa_conn, self._sa = self._sa, None
        if sa_conn is not None:
            if broken:
                await sa_conn.invalidate()
            await sa_conn.close()
        elif broken:
            await greenlet_spawn(self._fairy.invalidate)
        else:
            await greenlet_spawn(self._fairy.close)

    async def run(self, prepared: Prepared, parameters: Any = None) -> Rows:
        self._count_statement()
        compiled = prepared.for_dialect(self._dialect)
        driver = self._driver
        try:
            if isinstance(parameters, list):
                if not parameters:
                    return Rows([])
                if compiled.row_type is None:
                    await driver.executemany(compiled.sql, [compiled.bind(p) for p in parameters])
                    return Rows([])
                records = []
                for p in parameters:
                    records.extend(await driver.fetch(compiled.sql, *compiled.bind(p)))
            else:
                records = await driver.fetch(compiled.sql, *compiled.bind(parameters or {}))
        except _DRIVER_ERRORS as error:
            raise self._translate(error, compiled.sql, parameters) from error
        return Rows(compiled.rows(records) if compiled.row_type is not None else [])

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> sa.CursorResult[Any]:
        self._count_statement()
        return await self._sqlalchemy().execute(statement, parameters)

    async def scalar(self, statement: sa.Executable, parameters: Any = None) -> Any:
        self._count_statement()
        return await self._sqlalchemy().scalar(statement, parameters)

    async def run_sync(self, fn: Any) -> Any:
        return await self._sqlalchemy().run_sync(fn)

    def _sqlalchemy(self) -> AsyncConnection:
        """A SQLAlchemy connection over this unit's pooled connection (made without I/O)."""
        if self._sa is None:
            sync_conn = sa.Connection(self._engine.sync_engine, connection=self._fairy)
            self._sa = AsyncConnection(self._engine, sync_conn)
        return self._sa

    def _translate(self, error: Exception, statement: str, parameters: Any) -> Exception:
        """The exception SQLAlchemy would raise (``sqlalchemy.exc.IntegrityError`` for a unique
        violation, and so on), through the dialect's own translation of asyncpg's errors."""
        base = self._dialect.loaded_dbapi.Error
        try:
            self._adapted._handle_exception(error)
        except base as translated:
            return sa.exc.DBAPIError.instance(statement, parameters, translated, base, dialect=self._dialect)
        except Exception as other:  # pragma: no cover - the adaptor always raises a DBAPI error
            return other
        return error  # pragma: no cover
