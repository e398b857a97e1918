"""Create, drop or ping a PostgreSQL database for a test run: ``python -m tests.tools.pg_database``."""

from __future__ import annotations

import asyncio
import re
import sys

import asyncpg

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


async def _run(action: str, admin_url: str, name: str | None) -> None:
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        if action == "ping":
            await conn.fetchval("SELECT 1")
            return
        if name is None or not _NAME.fullmatch(name):
            raise SystemExit(f"bad database name {name!r}")
        if action == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        elif action == "drop":
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            raise SystemExit(f"unknown action {action!r}")
    finally:
        await conn.close()


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        raise SystemExit("usage: pg_database ping|create|drop ADMIN_URL [NAME]")
    asyncio.run(_run(argv[0], argv[1], argv[2] if len(argv) == 3 else None))


if __name__ == "__main__":
    main(sys.argv[1:])
