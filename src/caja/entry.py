"""The ``caja`` command. The developer tools that only talk HTTP (``listen``, ``trigger``) run
without importing the server, so they start in a fraction of the time."""

from __future__ import annotations

import sys

LIGHT_COMMANDS = frozenset({"listen", "trigger"})


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in LIGHT_COMMANDS:
        from caja.devcli import app

        app(prog_name="caja")
        return
    from caja.cli import main as full

    full()
