"""Deleting rows that outlived the retention window: oldest first, one bounded batch at a time.

Every table pruned here grows with the traffic (events and their deliveries, the approval calls'
log, e-mail jobs, caught e-mails, store lookups) and gets its rows in time order, so ``seq``
order is age order near enough. Each batch reads the next rows in that order from a cursor,
keeps the prefix older than the cutoff, and deletes what of it may go; a row newer than the
cutoff ends the pass. So a pass reads only the old rows (plus one batch), never a whole table,
and one batch holds the writer for a bounded time.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from caja.domain.jobs import JobStatus
from caja.store.connection import Conn
from caja.store.tables import cash_lookups, caught_emails, events, job_attempts, jobs

_UNFINISHED = (JobStatus.PENDING.value, JobStatus.RUNNING.value)
_FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)


@dataclass(frozen=True, slots=True)
class PrunedBatch:
    """What one batch deleted, where the next one starts, and whether the pass is over."""

    deleted: int
    last_seq: int
    done: bool


def _older_prefix(rows: Sequence[Any], age_of: str, cutoff: int) -> list[Any]:
    prefix = []
    for row in rows:
        if getattr(row, age_of) >= cutoff:
            break
        prefix.append(row)
    return prefix


def _batch(rows: Sequence[Any], prefix: Sequence[Any], limit: int, deleted: int, after: int) -> PrunedBatch:
    done = len(prefix) < len(rows) or len(rows) < limit
    return PrunedBatch(deleted=deleted, last_seq=prefix[-1].seq if prefix else after, done=done)


class RetentionRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def _next(self, table: sa.Table, columns: Sequence[str], after: int, limit: int) -> Sequence[Any]:
        query = (
            sa.select(table.c.seq, *(table.c[name] for name in columns))
            .where(table.c.seq > after)
            .order_by(table.c.seq)
            .limit(limit)
        )
        return (await self._conn.execute(query)).all()

    async def _delete_jobs(self, job_ids: Collection[str]) -> None:
        if not job_ids:
            return
        await self._conn.execute(sa.delete(job_attempts).where(job_attempts.c.job_id.in_(job_ids)))
        await self._conn.execute(sa.delete(jobs).where(jobs.c.id.in_(job_ids)))

    async def prune_events(self, cutoff: int, after: int, limit: int, dry_run: bool = False) -> PrunedBatch:
        """Events created before ``cutoff`` (epoch seconds) whose deliveries all ended, with them.

        An event goes with its delivery jobs and their attempts: its ``webhook_logs`` and
        ``webhook_status`` come from them, so keeping one without the other would misreport it.
        An event still being delivered (or retried) waits for a later pass. With ``dry_run`` the
        batch counts what it would delete and deletes nothing (as do the other methods).
        """
        rows = await self._next(events, ("id", "created_at"), after, limit)
        prefix = _older_prefix(rows, "created_at", cutoff)
        ids = [row.id for row in prefix]
        busy: set[str] = set()
        if ids:
            query = sa.select(jobs.c.event_id).where(jobs.c.event_id.in_(ids), jobs.c.status.in_(_UNFINISHED))
            busy = {row.event_id for row in (await self._conn.execute(query)).all()}
        gone = [event_id for event_id in ids if event_id not in busy]
        if gone and not dry_run:
            query = sa.select(jobs.c.id).where(jobs.c.event_id.in_(gone))
            await self._delete_jobs([row.id for row in (await self._conn.execute(query)).all()])
            await self._conn.execute(sa.delete(events).where(events.c.id.in_(gone)))
        return _batch(rows, prefix, limit, len(gone), after)

    async def prune_jobs(self, cutoff_ms: int, after: int, limit: int, dry_run: bool = False) -> PrunedBatch:
        """Finished jobs that finished before ``cutoff_ms`` and belong to no event kept, with their
        attempts: approval calls, e-mails, and deliveries of events no longer stored (pings)."""
        rows = await self._next(jobs, ("id", "status", "event_id", "created_at", "finished_at"), after, limit)
        prefix = _older_prefix(rows, "created_at", cutoff_ms)
        ended = [
            row
            for row in prefix
            if row.status in _FINISHED and row.finished_at is not None and row.finished_at < cutoff_ms
        ]
        event_ids = {row.event_id for row in ended if row.event_id is not None}
        kept: set[str] = set()
        if event_ids:
            query = sa.select(events.c.id).where(events.c.id.in_(event_ids))
            kept = {row.id for row in (await self._conn.execute(query)).all()}
        gone = [row.id for row in ended if row.event_id is None or row.event_id not in kept]
        if gone and not dry_run:
            await self._delete_jobs(gone)
        return _batch(rows, prefix, limit, len(gone), after)

    async def _prune_by_age(
        self, table: sa.Table, age: str, cutoff: int, after: int, limit: int, dry_run: bool
    ) -> PrunedBatch:
        rows = await self._next(table, (age,), after, limit)
        prefix = _older_prefix(rows, age, cutoff)
        if prefix and not dry_run:
            await self._conn.execute(sa.delete(table).where(table.c.seq.in_([row.seq for row in prefix])))
        return _batch(rows, prefix, limit, len(prefix), after)

    async def prune_caught_emails(
        self, cutoff: int, after: int, limit: int, dry_run: bool = False
    ) -> PrunedBatch:
        """Messages the sandbox's mail catcher received before ``cutoff`` (epoch seconds)."""
        return await self._prune_by_age(caught_emails, "received_at", cutoff, after, limit, dry_run)

    async def prune_lookups(self, cutoff: int, after: int, limit: int, dry_run: bool = False) -> PrunedBatch:
        """Store lookups that expired before ``cutoff`` (epoch seconds): no payment can use them."""
        return await self._prune_by_age(cash_lookups, "expires_at", cutoff, after, limit, dry_run)
