"""Alembic environment: Caja always hands in an open connection (see caja.store.migrate)."""

from __future__ import annotations

from alembic import context

from caja.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `caja migrate` or caja.store.migrate, not bare alembic")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
