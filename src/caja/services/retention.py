"""Retention: deleting what the traffic leaves behind once it is older than the window.

Kept whatever its age: the merchant's objects (customers, payment sources, orders, charges,
webhooks and keys) and the store networks' transaction records, which answer a store's retry
and its reversal. Pruned once older than the window: events with their deliveries, the
approval calls' log, e-mail jobs, caught e-mails, and store lookups (which expire in minutes).
Each batch is a unit of work of its own, so a pass never holds the writer for long and a pass
cut short (a stop, a crash) leaves whole batches deleted and the rest for the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from caja.domain.clock import Clock
from caja.store.retention import PrunedBatch, RetentionRepository
from caja.store.uow import UnitOfWorkFactory

# Rows one batch reads and at most deletes (with their attempts, for events and jobs): on SQLite a
# batch holds the one writer, and every payment that comes meanwhile waits for it.
BATCH = 200
# After each batch a pass rests this many times as long as the batch took, so that it holds the
# writer at most half the time however much is to delete (the first pass over months of rows).
REST = 1.0

Step = Callable[[RetentionRepository, int], Awaitable[PrunedBatch]]


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """Rows deleted by one pass."""

    cutoff: int  # epoch seconds: what was older went
    events: int = 0
    jobs: int = 0
    caught_emails: int = 0
    lookups: int = 0

    def counts(self) -> dict[str, int]:
        """Rows deleted, by what they were."""
        return {
            "events": self.events,
            "jobs": self.jobs,
            "caught_emails": self.caught_emails,
            "lookups": self.lookups,
        }

    @property
    def total(self) -> int:
        return sum(self.counts().values())


async def _drain(uow: UnitOfWorkFactory, step: Step, dry_run: bool) -> int:
    deleted, after = 0, 0
    while True:
        started = time.perf_counter()
        # A crash may lose a batch's deletes: the next pass deletes the same rows again.
        async with uow(write=not dry_run, durable=False) as tx:
            batch = await step(tx.retention, after)
        deleted += batch.deleted
        after = batch.last_seq
        if batch.done:
            return deleted
        await asyncio.sleep((time.perf_counter() - started) * REST)


async def prune(
    uow: UnitOfWorkFactory, clock: Clock, window: float, batch: int = BATCH, dry_run: bool = False
) -> RetentionReport:
    """Delete what is older than ``window`` seconds, table by table, in batches of ``batch`` rows.

    With ``dry_run``, count what would go and delete nothing: the same batches read the same
    rows in read-only units. The counts match a real pass's because an event's delivery jobs,
    still stored then, belong to an event still stored and so are not counted as jobs, just as
    a real pass deletes them with the event and never counts them as jobs.
    """
    if window <= 0:
        raise ValueError("a retention window must be above 0 seconds")
    cutoff_ms = clock.now_ms() - round(window * 1000)
    cutoff = cutoff_ms // 1000

    def drain(step: Step) -> Awaitable[int]:
        return _drain(uow, step, dry_run)

    # Events first: their delivery jobs go with them, and the jobs' pass then skips none of them.
    events = await drain(lambda repo, after: repo.prune_events(cutoff, after, batch, dry_run))
    jobs = await drain(lambda repo, after: repo.prune_jobs(cutoff_ms, after, batch, dry_run))
    emails = await drain(lambda repo, after: repo.prune_caught_emails(cutoff, after, batch, dry_run))
    lookups = await drain(lambda repo, after: repo.prune_lookups(cutoff, after, batch, dry_run))
    return RetentionReport(cutoff=cutoff, events=events, jobs=jobs, caught_emails=emails, lookups=lookups)
