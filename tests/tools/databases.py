"""PostgreSQL databases of a test's own, created and dropped through ``tests.tools.pg_database``."""

from __future__ import annotations

import subprocess
import sys

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
