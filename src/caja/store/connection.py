"""The connection interface repositories use, whatever the backend underneath."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from caja.store.prepared import Prepared, Rows


class Result(Protocol):
    def first(self) -> Any | None: ...

    def all(self) -> Any: ...

    def scalar(self) -> Any: ...

    def scalar_one(self) -> Any: ...


class Conn(Protocol):
    """What a repository may do inside a unit of work: run statements, read the dialect."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> sa.CursorResult[Any]: ...

    async def scalar(self, statement: sa.Executable, parameters: Any = None) -> Any: ...

    async def run(self, prepared: Prepared, parameters: Any = None) -> Result:
        """Run a prepared statement; a list of parameter dicts runs it once per dict."""
        ...


class LoopConnection:
    """A synchronous SQLAlchemy connection used directly on the event loop.

    For SQLite only: its statements run in microseconds from the page cache, far less than the
    thread hand-off an async driver pays per statement. The slow parts, waiting for the write
    lock and the commit's fsync, run in a worker thread (see caja.store.sqlite).
    """

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        driver = conn.connection.driver_connection
        assert driver is not None
        self._driver: Any = driver

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> sa.CursorResult[Any]:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: sa.Executable, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)

    async def run(self, prepared: Prepared, parameters: Any = None) -> Rows:
        compiled = prepared.for_dialect(self._conn.dialect)
        if isinstance(parameters, list):
            self._driver.executemany(compiled.sql, [compiled.bind(p) for p in parameters])
            return Rows([])
        cursor = self._driver.execute(compiled.sql, compiled.bind(parameters or {}))
        return Rows(compiled.rows(cursor.fetchall()) if cursor.description else [])


def json_dumps(value: Any) -> str:
    """JSON columns are written with orjson: several times faster than the standard library."""
    return orjson.dumps(value).decode()


def json_loads(text: str | bytes) -> Any:
    """And read back with it: what Caja stores in them is standard JSON (no NaN, no huge integers)."""
    return orjson.loads(text)
