"""What a Prometheus scrape reads: this process's metrics and the outbox's backlog."""

from __future__ import annotations

from caja import metrics
from caja.domain.clock import Clock
from caja.store.uow import UnitOfWorkFactory


async def scrape(uow: UnitOfWorkFactory, clock: Clock) -> bytes:
    now_ms = clock.now_ms()
    async with uow(single_statement=True) as tx:
        backlog = await tx.jobs.backlog(now_ms)
    return metrics.exposition(backlog, now_ms)
