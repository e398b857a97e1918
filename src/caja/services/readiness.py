"""Whether this process can serve: the database answers and its schema is the code's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from caja.store import migrate
from caja.store.db import Database


@dataclass(frozen=True, slots=True)
class Readiness:
    database: bool
    schema_revision: str | None
    expected_revision: str | None
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.database and self.schema_revision == self.expected_revision

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "database": "up" if self.database else "down",
            "schema_revision": self.schema_revision,
            "expected_revision": self.expected_revision,
            "error": self.error,
        }


async def check(database: Database) -> Readiness:
    expected = migrate.head_revision()
    try:
        await database.ping()
        current = await migrate.current_revision(database)
    except Exception as exc:  # any failure to reach the database means "not ready", never a 500
        return Readiness(False, None, expected, type(exc).__name__)
    return Readiness(True, current, expected)
