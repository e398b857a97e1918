"""The outbox worker: claim due jobs, run each with its kind's handler, record, reschedule.

Like procrastinate's worker: a loop claims a batch of due jobs (marking them ``running`` under a
lease), runs them concurrently, then records each attempt and, in the same transaction, what it
means: the job succeeded, waits for its next try, or is given up, and whatever the handler's
``settle`` adds (a webhook's health, a ``webhook.disabled`` event). Concurrency is bounded
overall and per endpoint, and claims skip endpoints already at their bound, so one slow or dead
endpoint never delays the others. The loop wakes when this process commits work, and polls for
work other processes commit. A heartbeat renews the leases of running jobs; leases that ran out
(a worker died) are put back to ``pending``, so every job runs at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from caja.domain.clock import Clock
from caja.domain.jobs import (
    RESPONSE_BODY_LIMIT,
    Attempt,
    Decision,
    Job,
    JobStatus,
    Next,
    RetryPolicy,
    decide,
)
from caja.store.uow import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger("caja.delivery")

Settle = Callable[[UnitOfWork, Decision], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one run of a job did. ``ok`` ends the job; otherwise it is retried unless ``permanent``.

    ``skipped`` means nothing was attempted (its target is gone or disabled): the job is
    cancelled and no attempt is recorded. ``settle``, when set, runs inside the transaction that
    records the attempt, with the dispatcher's decision, for the kind's own state changes.
    """

    ok: bool
    permanent: bool = False
    skipped: bool = False
    retry_after: float | None = None
    started_at: int = 0
    duration_ms: int = 0
    url: str | None = None
    http_status: int | None = None
    error: str | None = None
    request_headers: dict[str, str] | None = None
    request_body: str | None = None
    response_headers: dict[str, str] | None = None
    response_body: str | None = None
    settle: Settle | None = None

    @classmethod
    def skip(cls, reason: str) -> AttemptOutcome:
        return cls(ok=False, permanent=True, skipped=True, error=reason)


@dataclass(frozen=True, slots=True)
class JobContext:
    attempt: int  # 1-based number of this attempt
    worker: str


class JobHandler(Protocol):
    """Runs one attempt of a job of its kind. Should not raise: failures are outcomes."""

    async def __call__(self, job: Job, context: JobContext) -> AttemptOutcome: ...


@dataclass
class HandlerRegistry:
    """Handlers by job kind, each with its retry policy (the webhook policy by default)."""

    default_policy: RetryPolicy = field(default_factory=RetryPolicy)
    _handlers: dict[str, tuple[JobHandler, RetryPolicy]] = field(default_factory=dict)

    def register(self, kind: str, handler: JobHandler, policy: RetryPolicy | None = None) -> None:
        self._handlers[kind] = (handler, policy or self.default_policy)

    def get(self, kind: str) -> tuple[JobHandler, RetryPolicy] | None:
        return self._handlers.get(kind)

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    concurrency: int = 32
    per_endpoint: int = 8
    poll_interval: float = 0.2
    lease: float = 30.0
    # A handler still running after this long is abandoned and its attempt counted as failed.
    handler_deadline: float = 60.0
    # How long stop() lets running jobs finish before it cancels and releases them.
    grace: float = 5.0


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Dispatcher:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        registry: HandlerRegistry,
        config: DispatcherConfig,
        *,
        worker_id: str | None = None,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._registry = registry
        self._config = config
        self.worker_id = worker_id or new_worker_id()
        self._on_stop = on_stop
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._busy: dict[str, int] = {}
        self._maybe_more = False
        self._is_sqlite = uow.database.is_sqlite
        self.claimed = 0
        self.finished = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._stopping = False
        self._uow.add_commit_listener(self.wake)
        self._loop_task = asyncio.create_task(self._loop(), name=f"dispatcher {self.worker_id}")
        log.info("dispatcher started", worker=self.worker_id, kinds=self._registry.kinds)

    def wake(self) -> None:
        """Look for due jobs now rather than at the next poll (called after commits)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; let running jobs finish for ``grace`` seconds, then release the rest."""
        if self._loop_task is None:
            return
        self._stopping = True
        self._uow.remove_commit_listener(self.wake)
        self._wake.set()
        loop_task, self._loop_task = self._loop_task, None
        await loop_task
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=self._config.grace)
        leftover = list(self._running)
        for task in list(self._running.values()):
            task.cancel()
        if self._running:
            await asyncio.wait(list(self._running.values()))
        if leftover:
            try:
                async with self._uow(write=True, notify=False) as tx:
                    released = await tx.jobs.release(self.worker_id, leftover)
                log.info("dispatcher released running jobs", worker=self.worker_id, released=released)
            except Exception:
                log.exception("dispatcher could not release its jobs; their leases will run out")
        if self._on_stop is not None:
            await self._on_stop()
        log.info("dispatcher stopped", worker=self.worker_id, finished=self.finished)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    # -- the loop --------------------------------------------------------------------------------

    async def _loop(self) -> None:
        config = self._config
        heartbeat_every = max(config.lease / 3, 0.05)
        reclaim_every = max(min(config.lease / 4, 5.0), 0.05)
        next_heartbeat = time.monotonic() + heartbeat_every
        next_reclaim = time.monotonic()
        while not self._stopping:
            self._wake.clear()
            try:
                now = time.monotonic()
                if now >= next_reclaim:
                    next_reclaim = now + reclaim_every
                    await self._reclaim()
                if now >= next_heartbeat:
                    next_heartbeat = now + heartbeat_every
                    await self._heartbeat()
                claimed = await self._claim()
            except Exception:
                log.exception("dispatcher loop error", worker=self.worker_id)
                claimed = 0
            if self._stopping:
                break
            if claimed and self._free() > 0 and self._maybe_more:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=config.poll_interval)

    def _free(self) -> int:
        return self._config.concurrency - len(self._running)

    async def _claim(self) -> int:
        free = self._free()
        if free <= 0:
            self._maybe_more = True
            return 0
        now_ms = self._clock.now_ms()
        if self._is_sqlite:
            # A read first: the write lock (and its commit) only when there is something to take.
            async with self._uow() as tx:
                if not await tx.jobs.any_due(now_ms):
                    self._maybe_more = False
                    return 0
        async with self._uow(write=True, notify=False) as tx:
            jobs = await tx.jobs.claim(
                now_ms=now_ms,
                worker=self.worker_id,
                lease_until=now_ms + round(self._config.lease * 1000),
                limit=free,
                per_key=self._config.per_endpoint,
                busy=self._busy,
            )
        # Fewer than asked: the queue is drained, or endpoints are at their bound (a finishing
        # job wakes the loop then); as many as asked: there may be more right away.
        self._maybe_more = len(jobs) >= free or any(
            n >= self._config.per_endpoint for n in self._busy.values()
        )
        for job in jobs:
            self._spawn(job)
        self.claimed += len(jobs)
        return len(jobs)

    def _spawn(self, job: Job) -> None:
        key = job.concurrency_key
        self._busy[key] = self._busy.get(key, 0) + 1
        task = asyncio.create_task(self._execute(job), name=f"job {job.id}")
        self._running[job.id] = task

        def done(_task: asyncio.Task[None]) -> None:
            self._running.pop(job.id, None)
            left = self._busy.get(key, 1) - 1
            if left > 0:
                self._busy[key] = left
            else:
                self._busy.pop(key, None)
            if self._maybe_more:
                self._wake.set()

        task.add_done_callback(done)

    async def _heartbeat(self) -> None:
        if not self._running:
            return
        lease_until = self._clock.now_ms() + round(self._config.lease * 1000)
        async with self._uow(write=True, notify=False) as tx:
            await tx.jobs.extend_leases(self.worker_id, list(self._running), lease_until)

    async def _reclaim(self) -> None:
        now_ms = self._clock.now_ms()
        async with self._uow(write=True, notify=False) as tx:
            reclaimed = await tx.jobs.reclaim_expired(now_ms)
        if reclaimed:
            log.warning("reclaimed jobs whose lease ran out", count=reclaimed, worker=self.worker_id)
            self._wake.set()

    # -- one job ---------------------------------------------------------------------------------

    async def _execute(self, job: Job) -> None:
        entry = self._registry.get(job.kind)
        context = JobContext(attempt=job.attempts + 1, worker=self.worker_id)
        if entry is None:
            outcome = AttemptOutcome(
                ok=False, permanent=True, error=f"no handler for jobs of kind {job.kind!r}"
            )
            policy = self._registry.default_policy
        else:
            handler, policy = entry
            started = self._clock.now_ms()
            try:
                async with asyncio.timeout(self._config.handler_deadline):
                    outcome = await handler(job, context)
            except TimeoutError:
                outcome = AttemptOutcome(
                    ok=False,
                    started_at=started,
                    duration_ms=self._clock.now_ms() - started,
                    error=f"handler ran past its deadline of {self._config.handler_deadline:g} s",
                )
            except Exception as exc:
                log.exception("job handler raised", job=job.id, kind=job.kind)
                outcome = AttemptOutcome(
                    ok=False,
                    started_at=started,
                    duration_ms=self._clock.now_ms() - started,
                    error=f"{type(exc).__name__}: {exc}"[:500],
                )
        for delay in (0.05, 0.2, 1.0, 2.0, None):
            try:
                await self._record(job, context.attempt, outcome, policy)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                # The attempt happened; if it cannot be recorded the lease runs out and the job
                # runs again (at-least-once), so keep trying for a little while first.
                log.exception("could not record a job attempt", job=job.id)
                if delay is None:
                    return
                await asyncio.sleep(delay)
        self.finished += 1

    async def _record(self, job: Job, attempt: int, outcome: AttemptOutcome, policy: RetryPolicy) -> None:
        now_ms = self._clock.now_ms()
        async with self._uow(write=True, notify=False) as tx:
            if outcome.skipped:
                await tx.jobs.finish(
                    job.id,
                    self.worker_id,
                    JobStatus.CANCELLED,
                    now_ms=now_ms,
                    attempts=job.attempts,
                    last_error=outcome.error,
                )
                return
            await tx.jobs.record_attempt(
                Attempt(
                    job_id=job.id,
                    attempt=attempt,
                    started_at=outcome.started_at or now_ms,
                    duration_ms=outcome.duration_ms,
                    url=outcome.url,
                    http_status=outcome.http_status,
                    error=outcome.error,
                    request_headers=outcome.request_headers,
                    request_body=outcome.request_body,
                    response_headers=outcome.response_headers,
                    response_body=None
                    if outcome.response_body is None
                    else outcome.response_body[:RESPONSE_BODY_LIMIT],
                )
            )
            decision = decide(
                ok=outcome.ok,
                permanent=outcome.permanent,
                attempt=attempt,
                now_ms=now_ms,
                policy=policy,
                retry_after=outcome.retry_after,
            )
            attempted_at = outcome.started_at or now_ms
            if decision.next is Next.RETRY:
                assert decision.run_at is not None
                held = await tx.jobs.reschedule(
                    job.id,
                    self.worker_id,
                    run_at=decision.run_at,
                    attempts=attempt,
                    last_status=outcome.http_status,
                    last_error=outcome.error,
                    attempted_at=attempted_at,
                )
            else:
                held = await tx.jobs.finish(
                    job.id,
                    self.worker_id,
                    JobStatus.SUCCEEDED if decision.next is Next.SUCCEED else JobStatus.FAILED,
                    now_ms=now_ms,
                    attempts=attempt,
                    last_status=outcome.http_status,
                    last_error=outcome.error,
                    attempted_at=attempted_at,
                )
            if not held:
                log.warning("job lease lost before its attempt was recorded", job=job.id)
                return
            if outcome.settle is not None:
                await outcome.settle(tx, decision)
