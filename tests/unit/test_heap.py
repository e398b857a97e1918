"""The server's start-up objects are frozen out of the garbage collector's way once it has started."""

from __future__ import annotations

import gc
from pathlib import Path

from caja import bootstrap
from caja.app import create_app
from caja.config import Settings
from caja.store import migrate


async def test_the_lifespan_freezes_what_start_up_built(tmp_path: Path) -> None:
    container = bootstrap.build(Settings(database_url=f"sqlite:///{tmp_path / 'h.db'}"))
    await migrate.upgrade(container.database)
    app = create_app(container)
    gc.unfreeze()
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
            # The routes exist before start-up: frozen now, no longer among the collected objects.
            route = app.router.routes[0]
            assert frozen > 10_000
            assert not any(o is route for o in gc.get_objects())
    finally:
        gc.unfreeze()
