"""Keyset pagination over a table's ``seq``: newest first, stable while rows are added."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from caja.domain.errors import ParameterValidationError
from caja.domain.paging import PageRequest
from caja.store.connection import Conn


@dataclass(frozen=True, slots=True)
class RowPage:
    rows: Sequence[sa.Row[Any]]
    has_more: bool


async def fetch_page(
    conn: Conn,
    table: sa.Table,
    where: sa.ColumnElement[bool],
    request: PageRequest,
    cursor_scope: sa.ColumnElement[bool] | None = None,
) -> RowPage:
    """Rows newest first. ``next`` walks to older rows, ``previous`` back to newer ones.

    The cursor is looked up in ``cursor_scope`` (default ``where``): a scope that still holds
    deleted rows keeps a page link valid after the client deletes the items it just saw.
    """
    seq = table.c.seq
    query = sa.select(table).where(where)
    backwards = request.previous is not None
    cursor_id = request.previous if backwards else request.next
    if cursor_id is not None:
        scope = where if cursor_scope is None else cursor_scope
        cursor_seq = await conn.scalar(sa.select(seq).where(scope, table.c.id == cursor_id))
        if cursor_seq is None:
            param = "previous" if backwards else "next"
            raise ParameterValidationError.invalid(param, f"No object {cursor_id[:40]!r} to page from.")
        query = query.where(seq > cursor_seq if backwards else seq < cursor_seq)
    query = query.order_by(seq.asc() if backwards else seq.desc()).limit(request.limit + 1)
    rows = list((await conn.execute(query)).all())
    has_more = len(rows) > request.limit
    rows = rows[: request.limit]
    if backwards:
        rows.reverse()
    return RowPage(rows=rows, has_more=has_more)
