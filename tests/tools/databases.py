"""PostgreSQL databases of a test's own, created and dropped through ``tests.tools.pg_database``."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator

from sqlalchemy.engine import make_url


def pg_admin(action: str, admin_url: str, name: str) -> None:
    """``create`` or ``drop`` database ``name``, in a subprocess (the caller's event loop is left alone)."""
    subprocess.run(
        [sys.executable, "-m", "tests.tools.pg_database", action, admin_url, name], check=True, timeout=60
    )


def pg_admin_url(url: str) -> tuple[str, str]:
    """(the server's admin URL, the database's name) for a PostgreSQL database URL."""
    parsed = make_url(url)
    return parsed.set(database="postgres").render_as_string(hide_password=False), parsed.database or ""


def sibling_url(url: str, name: str) -> str:
    """``url`` with another database name."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def own_database(url: str, purpose: str) -> Iterator[str]:
    """A new database beside ``url``'s, named for ``purpose``, dropped afterwards: its URL.

    A dispatcher claims every due job of its database, so tests that leave jobs due must not
    share one with a ``caja serve`` another suite left running.
    """
    admin, base = pg_admin_url(url)
    name = f"{base}_{purpose}_{secrets.token_hex(4)}"[:60]
    pg_admin("create", admin, name)
    try:
        yield sibling_url(url, name)
    finally:
        pg_admin("drop", admin, name)
