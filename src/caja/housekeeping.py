"""The background pass that applies the retention window, in every process that runs a dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import random

import structlog

from caja import metrics
from caja.config import RetentionSettings
from caja.domain.clock import Clock
from caja.services import retention
from caja.store.uow import UnitOfWorkFactory

log = structlog.get_logger("caja.housekeeping")


class Housekeeper:
    """Prunes once shortly after start, then every ``settings.interval`` seconds.

    Several processes on one database may each run one: their deletes of the same rows are
    harmless (a row deleted twice is deleted once), and the start and the pauses are spread at
    random so that their passes seldom meet.
    """

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, settings: RetentionSettings) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._settings.window > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="caja-housekeeping")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        interval = self._settings.interval
        # Not at once: a start is busy enough, and processes started together should not prune together.
        await asyncio.sleep(random.uniform(min(interval, 10.0), min(interval, 60.0)))
        while True:
            try:
                report = await retention.prune(self._uow, self._clock, self._settings.window)
            except Exception:
                metrics.series(metrics.retention_passes, "failed").inc()
                log.exception("retention pass failed; trying again at the next one")
            else:
                metrics.series(metrics.retention_passes, "ok").inc()
                for table, deleted in report.counts().items():
                    metrics.series(metrics.retention_deleted, table).inc(deleted)
                if report.total:
                    log.info("retention pass", cutoff=report.cutoff, **report.counts())
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))
