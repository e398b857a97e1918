"""The outbox worker: claim due jobs, run each with its kind's handler, record, reschedule.

Like procrastinate's worker: a loop claims a batch of due jobs (marking them ``running`` under a
lease), runs them concurrently, then records each attempt and, in the same transaction, what it
means: the job succeeded, waits for its next try, or is given up, and whatever the handler's
``settle`` adds (a webhook's health, a ``webhook.disabled`` event). Concurrency is bounded
overall and per endpoint, and claims skip endpoints already at their bound, so one slow or dead
endpoint never delays the others. The loop wakes when this process commits work, and polls for
work other processes commit. A heartbeat renews the leases of running jobs; leases that ran out
(a worker died) are put back to ``pending``, so every job runs at least once.

Because every job runs at least once whatever happens, the dispatcher's own bookkeeping (claims,
leases, recorded attempts) need not wait for the disk: a crash that loses some of it only makes
jobs run again. Those writes are ``durable=False`` units (on SQLite, no fsync of their own).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from caja import metrics
from caja.delivery.priority import BackgroundLane
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
from caja.store.jobs import JobChange
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
    # Attempts recorded together whose settle shares a key settle once (e.g. "webhook X is fine").
    settle_key: object | None = None
    # Runs once the attempt's transaction has committed (e.g. forget a cached webhook row).
    after_commit: Callable[[], None] | None = None

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


@dataclass(frozen=True, slots=True)
class Registered:
    handler: JobHandler
    policy: RetryPolicy
    # Gives way to the requests the process is answering (``caja.delivery.priority``).
    background: bool = False


@dataclass
class HandlerRegistry:
    """Handlers by job kind, each with its retry policy (the webhook policy by default)."""

    default_policy: RetryPolicy = field(default_factory=RetryPolicy)
    _handlers: dict[str, Registered] = field(default_factory=dict)

    def register(
        self, kind: str, handler: JobHandler, policy: RetryPolicy | None = None, *, background: bool = False
    ) -> None:
        self._handlers[kind] = Registered(handler, policy or self.default_policy, background)

    def get(self, kind: str) -> Registered | None:
        return self._handlers.get(kind)

    @property
    def background_kinds(self) -> frozenset[str]:
        return frozenset(kind for kind, entry in self._handlers.items() if entry.background)

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
        lane: BackgroundLane | None = None,
    ) -> None:
        self._uow = uow
        # Where background jobs wait their turn; None: they run like any other.
        self._lane = lane
        self._clock = clock
        self._registry = registry
        self._config = config
        self.worker_id = worker_id or new_worker_id()
        self._on_stop = on_stop
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        # Claimed jobs not yet finished, by id; those waiting their turn, by concurrency key.
        self._held: dict[str, Job] = {}
        # Claimed jobs not yet attempted or still attempting, per key and in all: what claims count.
        self._unfinished_per_key: dict[str, int] = {}
        self._unfinished = 0
        self._queued: dict[str, deque[Job]] = {}
        # Tasks of started jobs (attempting, or recording their attempt), by job id.
        self._running: dict[str, asyncio.Task[None]] = {}
        # Jobs whose attempt is under way: what the concurrency bounds count. An attempt that is
        # over no longer occupies its endpoint while it is being recorded.
        self._attempting = 0
        self._attempting_per_key: dict[str, int] = {}
        self._maybe_more = False
        # Endpoints whose recent attempts succeeded fast: the running mean of their attempts'
        # durations (seconds). The worker holds more of their jobs (see ``_depth``).
        self._fast: dict[str, float] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self._records: list[_Record] = []
        self._records_waiting = asyncio.Event()
        self._recorder_task: asyncio.Task[None] | None = None
        self._recorder_closing = False
        self._is_sqlite = uow.database.is_sqlite
        self._background: frozenset[str] = frozenset()
        self.claimed = 0
        self.finished = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._stopping = False
        self._recorder_closing = False
        self._background = self._registry.background_kinds
        self._uow.add_commit_listener(self._committed)
        self._recorder_task = asyncio.create_task(self._recorder(), name=f"recorder {self.worker_id}")
        self._loop_task = asyncio.create_task(self._loop(), name=f"dispatcher {self.worker_id}")
        log.info("dispatcher started", worker=self.worker_id, kinds=self._registry.kinds)

    def wake(self) -> None:
        """Look for due jobs now rather than at the next poll (called after commits)."""
        self._wake.set()

    def _committed(self, kinds: frozenset[str]) -> None:
        # Background jobs alone (a payment's receipt) wait for the next poll: one claim then
        # takes all those committed meanwhile, instead of one claim per payment.
        if not kinds or not kinds <= self._background:
            self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; let running jobs finish for ``grace`` seconds, then release the rest."""
        if self._loop_task is None:
            return
        self._stopping = True
        self._uow.remove_commit_listener(self._committed)
        self._wake.set()
        loop_task, self._loop_task = self._loop_task, None
        await loop_task
        # Claimed but not started: handed back below.
        for queue in self._queued.values():
            self._unfinished -= len(queue)
            for job in queue:
                _decrement(self._unfinished_per_key, job.concurrency_key)
        self._queued.clear()
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=self._config.grace)
        for task in list(self._running.values()):
            task.cancel()
        if self._running:
            await asyncio.wait(list(self._running.values()))
        if self._releases:
            await asyncio.wait(list(self._releases))
        if self._recorder_task is not None:
            # Attempts of cancelled jobs may still be queued: write them before handing jobs back.
            self._recorder_closing = True
            self._records_waiting.set()
            await self._recorder_task
            self._recorder_task = None
        leftover = list(self._held)
        if leftover:
            try:
                async with self._uow(write=True, notify=False) as tx:
                    released = await tx.jobs.release(self.worker_id, leftover)
                log.info("dispatcher released its jobs", worker=self.worker_id, released=released)
            except Exception:
                log.exception("dispatcher could not release its jobs; their leases will run out")
            self._held.clear()
        if self._on_stop is not None:
            await self._on_stop()
        log.info("dispatcher stopped", worker=self.worker_id, finished=self.finished)

    @property
    def in_flight(self) -> int:
        return self._attempting

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
            if claimed and self._room() > 0 and self._maybe_more:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=config.poll_interval)

    def _room(self) -> int:
        """How many more jobs to claim: up to ``PREFETCH`` times the concurrency may be attempting
        or waiting their turn (attempts being recorded do not count, unless they pile up). A fast
        endpoint's jobs beyond the ordinary depth do not count: they never keep others' out."""
        if len(self._records) >= RECORD_BACKLOG:
            return 0
        normal = self._config.per_endpoint * PREFETCH
        held = sum(min(n, normal) for n in self._unfinished_per_key.values())
        return self._config.concurrency * PREFETCH - held

    def _depth(self, key: str) -> int:
        """How many jobs of one endpoint (concurrency key) this worker may hold.

        ``PREFETCH`` times ``per_endpoint``; ``DEEP_PREFETCH`` times for an endpoint whose recent
        attempts succeeded within ``FAST_ATTEMPT``: its jobs go by so quickly that a shallow
        queue would run dry while the next claim is being committed.
        """
        if self._fast.get(key, FAST_ATTEMPT) < FAST_ATTEMPT:
            return self._config.per_endpoint * DEEP_PREFETCH
        return self._config.per_endpoint * PREFETCH

    def _note_speed(self, key: str, ok: bool, seconds: float) -> None:
        if not ok:
            self._fast.pop(key, None)
            self._shed(key)
            return
        if len(self._fast) > 10_000:
            self._fast.clear()
        previous = self._fast.get(key)
        self._fast[key] = seconds if previous is None else previous * 0.8 + seconds * 0.2
        if self._fast[key] >= FAST_ATTEMPT:
            self._shed(key)

    def _shed(self, key: str) -> None:
        """An endpoint no longer fast: hand back the queued jobs it holds beyond the ordinary depth,
        so other workers may take them rather than wait behind its slow attempts here."""
        queue = self._queued.get(key)
        extra = self._unfinished_per_key.get(key, 0) - self._config.per_endpoint * PREFETCH
        if not queue or extra <= 0:
            return
        shed = [queue.pop() for _ in range(min(extra, len(queue)))]
        if not queue:
            del self._queued[key]
        for job in shed:
            self._held.pop(job.id, None)
            self._unfinished -= 1
            _decrement(self._unfinished_per_key, key)

        async def release() -> None:
            try:
                async with self._uow(write=True, notify=False, durable=False) as tx:
                    await tx.jobs.release(self.worker_id, [job.id for job in shed])
            except Exception:
                # Their leases run out and any worker takes them again: never attempted, never lost.
                log.exception("could not hand back jobs of a slowed endpoint", worker=self.worker_id)

        task = asyncio.create_task(release(), name=f"release {self.worker_id}")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _claim(self) -> int:
        room = self._room()
        if room <= 0:
            self._maybe_more = True
            return 0
        now_ms = self._clock.now_ms()
        if self._is_sqlite:
            # A read first: the write lock (and its commit) only when there is something to take.
            async with self._uow() as tx:
                if not await tx.jobs.any_due(now_ms):
                    self._maybe_more = False
                    return 0
        per_key = self._config.per_endpoint * PREFETCH
        deep = {key: depth for key in self._fast if (depth := self._depth(key)) > per_key}
        # What the claim is bounded by; attempts finishing while it commits lower the live counts.
        busy = dict(self._unfinished_per_key)
        async with self._uow(write=True, notify=False, durable=False) as tx:
            jobs = await tx.jobs.claim(
                now_ms=now_ms,
                worker=self.worker_id,
                lease_until=now_ms + round(self._config.lease * 1000),
                limit=room,
                per_key=per_key,
                busy=busy,
                deep=deep,
            )
        for job in jobs:
            key = job.concurrency_key
            self._held[job.id] = job
            self._unfinished += 1
            self._unfinished_per_key[key] = self._unfinished_per_key.get(key, 0) + 1
            self._queued.setdefault(key, deque()).append(job)
        # As many as asked, or endpoints at their bound: there may be more due right away. Judged
        # on the counts the claim saw (plus what it took), not the live ones: attempts that ended
        # while it committed must not hide an endpoint's backlog until the next poll.
        for job in jobs:
            busy[job.concurrency_key] = busy.get(job.concurrency_key, 0) + 1
        self._maybe_more = len(jobs) >= room or any(n >= deep.get(key, per_key) for key, n in busy.items())
        self._start_ready()
        self.claimed += len(jobs)
        return len(jobs)

    def _start_ready(self) -> None:
        """Start queued jobs while the overall and per-endpoint bounds allow, oldest endpoint first."""
        if self._stopping:
            return
        for key in list(self._queued):
            queue = self._queued[key]
            while queue and self._attempting < self._config.concurrency:
                if self._attempting_per_key.get(key, 0) >= self._config.per_endpoint:
                    break
                self._spawn(queue.popleft())
            if not queue:
                del self._queued[key]
            if self._attempting >= self._config.concurrency:
                return

    def _spawn(self, job: Job) -> None:
        key = job.concurrency_key
        self._attempting += 1
        self._attempting_per_key[key] = self._attempting_per_key.get(key, 0) + 1
        attempt_over = False

        def end_attempt() -> None:
            nonlocal attempt_over
            if attempt_over:
                return
            attempt_over = True
            self._attempting -= 1
            _decrement(self._attempting_per_key, key)
            self._unfinished -= 1
            _decrement(self._unfinished_per_key, key)
            self._start_ready()
            # Claim more once half this endpoint's prefetched jobs are used up, or half the room is free.
            if self._maybe_more and (
                self._unfinished_per_key.get(key, 0) <= self._depth(key) // 2
                or self._unfinished <= self._config.concurrency
            ):
                self._wake.set()

        task = asyncio.create_task(self._execute(job, end_attempt), name=f"job {job.id}")
        self._running[job.id] = task

        def done(task: asyncio.Task[None]) -> None:
            self._running.pop(job.id, None)
            end_attempt()
            if not task.cancelled():
                # Finished (recorded, or left to its lease): no longer ours to renew or release.
                self._held.pop(job.id, None)

        task.add_done_callback(done)

    async def _heartbeat(self) -> None:
        if not self._held:
            return
        lease_until = self._clock.now_ms() + round(self._config.lease * 1000)
        async with self._uow(write=True, notify=False, durable=False) as tx:
            await tx.jobs.extend_leases(self.worker_id, list(self._held), lease_until)

    async def _reclaim(self) -> None:
        now_ms = self._clock.now_ms()
        if self._is_sqlite:
            async with self._uow() as tx:
                if not await tx.jobs.any_expired(now_ms):
                    return
        async with self._uow(write=True, notify=False, durable=False) as tx:
            reclaimed = await tx.jobs.reclaim_expired(now_ms)
        if reclaimed:
            log.warning("reclaimed jobs whose lease ran out", count=reclaimed, worker=self.worker_id)
            self._wake.set()

    # -- one job ---------------------------------------------------------------------------------

    async def _execute(self, job: Job, end_attempt: Callable[[], None]) -> None:
        entry = self._registry.get(job.kind)
        context = JobContext(attempt=job.attempts + 1, worker=self.worker_id)
        began = time.monotonic()
        if entry is None:
            outcome = AttemptOutcome(
                ok=False, permanent=True, error=f"no handler for jobs of kind {job.kind!r}"
            )
            policy = self._registry.default_policy
        else:
            handler, policy = entry.handler, entry.policy
            turn = self._lane.turn() if entry.background and self._lane else contextlib.nullcontext()
            started = self._clock.now_ms()
            try:
                async with turn:
                    # The attempt (and what the endpoint's speed is judged on) begins with its turn.
                    began, started = time.monotonic(), self._clock.now_ms()
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
        if entry is not None:
            took = time.monotonic() - began
            self._note_speed(job.concurrency_key, outcome.ok, took)
            if not outcome.skipped:
                metrics.series(metrics.job_attempt_seconds, job.kind).observe(took)
        end_attempt()  # the endpoint is free for the next job while this one is recorded
        record = _Record(job, context.attempt, outcome, policy, asyncio.get_running_loop().create_future())
        for delay in (0.05, 0.2, 1.0, 2.0, None):
            self._records.append(record)
            self._records_waiting.set()
            try:
                await asyncio.shield(record.done)
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
                record = replace(record, done=asyncio.get_running_loop().create_future())
        self.finished += 1

    async def _recorder(self) -> None:
        """Writes finished attempts in batches: one transaction for all that finished meanwhile."""
        while True:
            await self._records_waiting.wait()
            self._records_waiting.clear()
            if len(self._records) < self._attempting // 4 and not self._recorder_closing:
                # Others are about to finish: a few milliseconds buy one transaction for all.
                await asyncio.sleep(RECORD_GATHER)
            while self._records:
                batch, self._records = self._records[:RECORD_BATCH], self._records[RECORD_BATCH:]
                try:
                    await self._record_batch(batch)
                except Exception:
                    log.exception("a batch of job attempts failed; recording them one by one")
                    for record in batch:
                        try:
                            await self._record_batch([record])
                        except Exception as exc:
                            if not record.done.done():
                                record.done.set_exception(exc)
                            continue
                        if not record.done.done():
                            record.done.set_result(None)
                    continue
                for record in batch:
                    if not record.done.done():
                        record.done.set_result(None)
            if self._recorder_closing:
                return

    async def _record_batch(self, batch: list[_Record]) -> None:
        now_ms = self._clock.now_ms()
        async with self._uow(write=True, notify=False, durable=False) as tx:
            held = await tx.jobs.held([r.job.id for r in batch], self.worker_id)
            lost = [r.job.id for r in batch if r.job.id not in held]
            if lost:
                log.warning("job leases lost before their attempts were recorded", jobs=lost)
            attempts: list[Attempt] = []
            changes: list[JobChange] = []
            settles: list[tuple[_Record, Decision]] = []
            settled_keys: set[object] = set()
            results: list[tuple[str, str]] = []
            for record in batch:
                job, outcome = record.job, record.outcome
                if outcome.skipped:
                    if job.id in held:
                        results.append((job.kind, "cancelled"))
                        changes.append(
                            JobChange(
                                job.id,
                                JobStatus.CANCELLED,
                                job.run_at,
                                job.attempts,
                                None,
                                outcome.error,
                                None,
                                now_ms,
                            )
                        )
                    continue
                attempts.append(_attempt_row(record, now_ms))
                if job.id not in held:
                    continue
                decision = decide(
                    ok=outcome.ok,
                    permanent=outcome.permanent,
                    attempt=record.attempt,
                    now_ms=now_ms,
                    policy=record.policy,
                    retry_after=outcome.retry_after,
                )
                retry = decision.next is Next.RETRY
                status = (
                    JobStatus.PENDING
                    if retry
                    else (JobStatus.SUCCEEDED if decision.next is Next.SUCCEED else JobStatus.FAILED)
                )
                results.append((job.kind, "retrying" if retry else status.value))
                changes.append(
                    JobChange(
                        job_id=job.id,
                        status=status,
                        run_at=decision.run_at if retry and decision.run_at is not None else job.run_at,
                        attempts=record.attempt,
                        last_status=outcome.http_status,
                        last_error=outcome.error,
                        attempted_at=outcome.started_at or now_ms,
                        finished_at=None if retry else now_ms,
                    )
                )
                if outcome.settle is not None:
                    key = outcome.settle_key
                    if key is not None and key in settled_keys:
                        continue
                    if key is not None:
                        settled_keys.add(key)
                    settles.append((record, decision))
            await tx.jobs.record_attempts(attempts)
            await tx.jobs.settle_many(changes, self.worker_id)
            for record, decision in settles:
                assert record.outcome.settle is not None
                await record.outcome.settle(tx, decision)
        for kind, result in results:
            metrics.series(metrics.job_attempts, kind, result).inc()
        for record in batch:
            if record.outcome.after_commit is not None:
                record.outcome.after_commit()


RECORD_BATCH = 200
RECORD_GATHER = 0.003
# Attempts waiting to be recorded beyond which a worker stops claiming (the database is slow).
RECORD_BACKLOG = 400
# A worker holds up to this many times its concurrency (per endpoint too): the next jobs are
# already claimed when one finishes, and claims come in batches rather than one by one.
PREFETCH = 2
# ... and this many times ``per_endpoint`` of an endpoint whose attempts succeed within
# ``FAST_ATTEMPT`` seconds (a running mean): at hundreds of deliveries a second, a queue of
# 2 × per_endpoint runs dry long before the next claim has committed.
DEEP_PREFETCH = 8
FAST_ATTEMPT = 0.1


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 1) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


@dataclass(frozen=True, slots=True)
class _Record:
    job: Job
    attempt: int
    outcome: AttemptOutcome
    policy: RetryPolicy
    done: asyncio.Future[None]


def _attempt_row(record: _Record, now_ms: int) -> Attempt:
    outcome = record.outcome
    return Attempt(
        job_id=record.job.id,
        attempt=record.attempt,
        started_at=outcome.started_at or now_ms,
        duration_ms=outcome.duration_ms,
        url=outcome.url,
        http_status=outcome.http_status,
        error=outcome.error,
        request_headers=outcome.request_headers,
        request_body=outcome.request_body,
        response_headers=outcome.response_headers,
        response_body=None if outcome.response_body is None else outcome.response_body[:RESPONSE_BODY_LIMIT],
    )
