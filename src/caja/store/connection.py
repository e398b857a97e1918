"""The connection interface repositories use, whatever the backend underneath."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class Conn(Protocol):
    """What a repository may do inside a unit of work: run statements, read the dialect."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> sa.CursorResult[Any]: ...

    async def scalar(self, statement: sa.Executable, parameters: Any = None) -> Any: ...


class LoopConnection:
    """A synchronous SQLAlchemy connection used directly on the event loop.

    For SQLite only: its statements run in microseconds from the page cache, far less than the
    thread hand-off an async driver pays per statement. The slow parts, waiting for the write
    lock and the commit's fsync, run in a worker thread (see caja.store.sqlite).
    """

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> sa.CursorResult[Any]:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: sa.Executable, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)


def json_dumps(value: Any) -> str:
    """JSON columns are written with orjson: several times faster than the standard library."""
    return orjson.dumps(value).decode()
