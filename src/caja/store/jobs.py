"""The job queue: enqueue, claim with a lease, record attempts, finish or reschedule.

Claiming follows procrastinate's worker: pick due ``pending`` jobs, mark them ``running`` with a
lease (``lease_until``, ``worker``) in one transaction, run them outside it, then record the
outcome. On PostgreSQL the pick is ``FOR UPDATE SKIP LOCKED``, so any number of workers on one
database never take the same job; on SQLite the single writer already serialises claims. A job
whose lease ran out (its worker died) is put back to ``pending`` by whoever notices first: that,
and nothing being marked done before its attempt was recorded, makes delivery at-least-once.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from caja.domain.jobs import Attempt, Job, JobBacklog, JobStatus
from caja.domain.paging import PageRequest
from caja.domain.tenancy import Tenant
from caja.store.connection import Conn
from caja.store.pagination import RowPage, fetch_page
from caja.store.prepared import Prepared
from caja.store.tables import job_attempts, jobs

_PENDING = JobStatus.PENDING.value
_RUNNING = JobStatus.RUNNING.value
_KEY = sa.func.coalesce(jobs.c.webhook_id, jobs.c.kind)
# How many due jobs to look at per slot when picking a fair batch (see ``claim``).
_LOOKAHEAD = 4
_MAX_CANDIDATES = 2000


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    kind: str
    account_id: str
    livemode: bool
    payload: dict[str, Any]
    run_at: int
    created_at: int
    event_id: str | None = None
    webhook_id: str | None = None
    status: JobStatus = JobStatus.PENDING
    attempts: int = 0
    finished_at: int | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_attempted_at: int | None = None


@dataclass(frozen=True, slots=True)
class JobChange:
    """What one recorded attempt does to its job: back to pending at ``run_at``, or closed."""

    job_id: str
    status: JobStatus
    run_at: int
    attempts: int
    last_status: int | None
    last_error: str | None
    attempted_at: int | None
    finished_at: int | None


_SETTLE = (
    jobs.update()
    .where(jobs.c.id == sa.bindparam("job_id"))
    .values(
        status=sa.bindparam("new_status"),
        run_at=sa.bindparam("new_run_at"),
        attempts=sa.bindparam("new_attempts"),
        last_status=sa.bindparam("new_last_status"),
        last_error=sa.bindparam("new_last_error"),
        last_attempted_at=sa.bindparam("new_attempted_at"),
        finished_at=sa.bindparam("new_finished_at"),
        worker=sa.bindparam("new_worker"),
        lease_until=None,
    )
)


def _to_attempt(r: Any) -> Attempt:
    return Attempt(
        job_id=r.job_id,
        attempt=r.attempt,
        started_at=r.started_at,
        duration_ms=r.duration_ms,
        url=r.url,
        http_status=r.http_status,
        error=r.error,
        request_headers=r.request_headers,
        request_body=r.request_body,
        response_headers=r.response_headers,
        response_body=r.response_body,
    )


def to_job(row: Any) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        account_id=row.account_id,
        livemode=bool(row.livemode),
        event_id=row.event_id,
        webhook_id=row.webhook_id,
        payload=row.payload,
        status=JobStatus(row.status),
        attempts=int(row.attempts),
        run_at=int(row.run_at),
        created_at=int(row.created_at),
        lease_until=row.lease_until,
        worker=row.worker,
    )


def _truncate(text: str | None, limit: int = 500) -> str | None:
    return None if text is None else text[:limit]


# Inserted on every event fan-out, delivery and approval call: compiled once (caja.store.prepared).
_JOB_COLUMNS = [c.key for c in jobs.columns if c.key != "seq"]
_INSERT_JOBS = Prepared(jobs.insert(), keys=_JOB_COLUMNS)
_ATTEMPT_COLUMNS = [c.key for c in job_attempts.columns if c.key != "seq"]
_INSERT_ATTEMPTS = Prepared(job_attempts.insert(), keys=_ATTEMPT_COLUMNS)


def _one_of(column: sa.ColumnElement[Any], dialect: str, item: sa.types.TypeEngine[Any]) -> Any:
    """``column`` in the list bound as ``:values``, in one statement shape whatever the list's length.

    SQLAlchemy's ``in_()`` expands a list into one placeholder per item when it runs, which
    compiles the statement again on every call (~300 µs each, several per dispatcher batch). On
    PostgreSQL the list binds as one array (``= ANY``); on SQLite as one JSON array (``json_each``).
    """
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam("values", type_=postgresql.ARRAY(item)))
    return column.in_(
        sa.select(sa.literal_column("value")).select_from(sa.func.json_each(sa.bindparam("values")))
    )


def _list_param(dialect: str, values: Collection[Any]) -> Any:
    return list(values) if dialect == "postgresql" else json.dumps(list(values))


# The dispatcher's statements, compiled once (several run for every batch it claims and records).
_ANY_DUE = Prepared(
    sa.select(jobs.c.seq)
    .where(jobs.c.status == _PENDING, jobs.c.run_at <= sa.bindparam("now"))
    .order_by(jobs.c.status, jobs.c.run_at)
    .limit(1)
)
_ANY_EXPIRED = Prepared(
    sa.select(jobs.c.seq).where(jobs.c.status == _RUNNING, jobs.c.lease_until < sa.bindparam("now")).limit(1)
)
_CANDIDATES = Prepared(
    sa.select(jobs.c.seq, _KEY.label("key"))
    .where(jobs.c.status == _PENDING, jobs.c.run_at <= sa.bindparam("now"))
    .order_by(jobs.c.run_at, jobs.c.seq)
    .limit(sa.bindparam("limit"))
)


def _claim_statement(dialect: str) -> Prepared:
    picked = _one_of(jobs.c.seq, dialect, sa.BigInteger())
    chosen: sa.ColumnElement[bool]
    if dialect == "postgresql":
        locked = (
            sa.select(jobs.c.seq).where(picked, jobs.c.status == _PENDING).with_for_update(skip_locked=True)
        )
        chosen = jobs.c.seq.in_(locked.scalar_subquery())
    else:
        chosen = sa.and_(picked, jobs.c.status == _PENDING)
    return Prepared(
        jobs.update()
        .where(chosen)
        .values(status=_RUNNING, worker=sa.bindparam("worker_id"), lease_until=sa.bindparam("lease"))
        .returning(*jobs.columns)
    )


def _held_statement(dialect: str) -> Prepared:
    query = (
        sa.select(jobs.c.id)
        .where(
            _one_of(jobs.c.id, dialect, sa.String()),
            jobs.c.worker == sa.bindparam("worker_id"),
            jobs.c.status == _RUNNING,
        )
        .order_by(jobs.c.id)
    )
    return Prepared(query.with_for_update() if dialect == "postgresql" else query)


_CLAIM = {dialect: _claim_statement(dialect) for dialect in ("postgresql", "sqlite")}
_HELD = {dialect: _held_statement(dialect) for dialect in ("postgresql", "sqlite")}


class JobRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        # What the unit of work tells its commit listeners (dispatchers) once it has committed.
        self.enqueued_kinds: set[str] = set()

    @property
    def _postgres(self) -> bool:
        return self._conn.dialect.name == "postgresql"

    async def enqueue(self, *new_jobs: NewJob) -> None:
        """Add jobs; once the unit commits, dispatchers are woken to run the due ones."""
        await self._insert(new_jobs)
        self.note_enqueued(new_jobs)

    def note_enqueued(self, new_jobs: Iterable[NewJob]) -> None:
        """Jobs another statement of this unit inserted: the commit wakes dispatchers for them too."""
        self.enqueued_kinds.update(job.kind for job in new_jobs)

    async def log_finished(self, *finished: NewJob) -> None:
        """Add jobs that already ran (approval calls): kept for the record, nothing to wake for."""
        await self._insert(finished)

    async def _insert(self, new_jobs: tuple[NewJob, ...]) -> None:
        if not new_jobs:
            return
        await self._conn.run(_INSERT_JOBS, [job_columns(j) for j in new_jobs])

    async def any_due(self, now_ms: int) -> bool:
        """A cheap look before taking the write lock to claim."""
        return (await self._conn.run(_ANY_DUE, {"now": now_ms})).first() is not None

    async def any_expired(self, now_ms: int) -> bool:
        """A cheap look for running jobs whose lease ran out, before taking the write lock."""
        return (await self._conn.run(_ANY_EXPIRED, {"now": now_ms})).first() is not None

    async def claim(
        self,
        *,
        now_ms: int,
        worker: str,
        lease_until: int,
        limit: int,
        per_key: int | None = None,
        busy: Mapping[str, int] | None = None,
        deep: Mapping[str, int] | None = None,
    ) -> list[Job]:
        """Take up to ``limit`` due jobs, oldest first, at most ``per_key`` per endpoint.

        ``busy`` counts the jobs this worker already runs per concurrency key (webhook id, or kind);
        keys at ``per_key`` are skipped, so a slow endpoint's backlog never fills a batch while
        other endpoints' jobs wait behind it. ``deep`` raises the bound of some keys (endpoints
        that answer fast, whose jobs the worker goes through quickly).
        """
        if limit <= 0:
            return []
        busy = busy or {}
        deep = deep or {}

        def bound(key: str) -> int | None:
            return None if per_key is None else deep.get(key, per_key)

        full = [key for key, n in busy.items() if (b := bound(key)) is not None and n >= b]
        look_at = min(limit * _LOOKAHEAD, _MAX_CANDIDATES) if per_key is not None else limit
        rows: Any
        if full:
            # Rare (an endpoint at its bound): the full keys are left out in SQL, so they cannot
            # fill the candidates.
            candidates = (
                sa.select(jobs.c.seq, _KEY.label("key"))
                .where(jobs.c.status == _PENDING, jobs.c.run_at <= now_ms, _KEY.not_in(full))
                .order_by(jobs.c.run_at, jobs.c.seq)
                .limit(look_at)
            )
            rows = (await self._conn.execute(candidates)).all()
        else:
            rows = (await self._conn.run(_CANDIDATES, {"now": now_ms, "limit": look_at})).all()
        picked: list[int] = []
        taken: dict[str, int] = {}
        for row in rows:
            seq, key = int(row.seq), str(row.key)
            running = busy.get(key, 0) + taken.get(key, 0)
            key_bound = bound(key)
            if key_bound is not None and running >= key_bound:
                continue
            taken[key] = taken.get(key, 0) + 1
            picked.append(seq)
            if len(picked) >= limit:
                break
        if not picked:
            return []
        dialect = self._conn.dialect.name
        params = {"values": _list_param(dialect, picked), "worker_id": worker, "lease": lease_until}
        claimed = [to_job(r) for r in (await self._conn.run(_CLAIM[dialect], params)).all()]
        claimed.sort(key=lambda j: (j.run_at, j.id))
        return claimed

    async def extend_leases(self, worker: str, job_ids: Collection[str], lease_until: int) -> int:
        """The heartbeat: a live worker keeps its running jobs' leases from running out."""
        if not job_ids:
            return 0
        mine = sa.and_(jobs.c.id.in_(list(job_ids)), jobs.c.worker == worker, jobs.c.status == _RUNNING)
        if self._postgres:
            # Rows locked in id order, like ``held``: the heartbeat and the recorder never deadlock.
            locked = sa.select(jobs.c.seq).where(mine).order_by(jobs.c.id).with_for_update()
            mine = jobs.c.seq.in_(locked.scalar_subquery())
        stmt = jobs.update().where(mine).values(lease_until=lease_until)
        return int((await self._conn.execute(stmt)).rowcount)

    async def reclaim_expired(self, now_ms: int) -> int:
        """Put back to ``pending`` the running jobs whose worker stopped renewing their lease."""
        expired = sa.and_(jobs.c.status == _RUNNING, jobs.c.lease_until < now_ms)
        where: sa.ColumnElement[bool]
        if self._postgres:
            locked = sa.select(jobs.c.seq).where(expired).with_for_update(skip_locked=True)
            where = jobs.c.seq.in_(locked.scalar_subquery())
        else:
            where = expired
        stmt = (
            jobs.update()
            .where(where)
            .values(status=_PENDING, worker=None, lease_until=None, last_error="lease expired")
        )
        return int((await self._conn.execute(stmt)).rowcount)

    async def release(self, worker: str, job_ids: Collection[str] | None = None) -> int:
        """Hand back running jobs (a worker stopping): pending again, due now, attempt not counted."""
        where = sa.and_(jobs.c.worker == worker, jobs.c.status == _RUNNING)
        if job_ids is not None:
            if not job_ids:
                return 0
            where = sa.and_(where, jobs.c.id.in_(list(job_ids)))
        stmt = jobs.update().where(where).values(status=_PENDING, worker=None, lease_until=None)
        return int((await self._conn.execute(stmt)).rowcount)

    async def record_attempt(self, attempt: Attempt) -> None:
        await self.record_attempts([attempt])

    async def record_attempts(self, attempts: list[Attempt]) -> None:
        if not attempts:
            return
        rows = [
            {
                "job_id": a.job_id,
                "attempt": a.attempt,
                "started_at": a.started_at,
                "duration_ms": a.duration_ms,
                "url": a.url,
                "http_status": a.http_status,
                "error": _truncate(a.error),
                "request_headers": a.request_headers,
                "request_body": a.request_body,
                "response_headers": a.response_headers,
                "response_body": a.response_body,
            }
            for a in attempts
        ]
        await self._conn.run(_INSERT_ATTEMPTS, rows)

    async def held(self, job_ids: Collection[str], worker: str) -> set[str]:
        """Which of ``job_ids`` this worker still holds (running under its lease), locked until commit."""
        if not job_ids:
            return set()
        dialect = self._conn.dialect.name
        params = {"values": _list_param(dialect, job_ids), "worker_id": worker}
        return {str(row.id) for row in (await self._conn.run(_HELD[dialect], params)).all()}

    async def settle_many(self, changes: list[JobChange], worker: str) -> None:
        """Close or reschedule many held jobs in one statement (one row of parameters each).

        A closed job keeps the worker that ran it last (for operators); a rescheduled one is free.
        """
        if not changes:
            return
        rows = [
            {
                "job_id": c.job_id,
                "new_status": c.status.value,
                "new_run_at": c.run_at,
                "new_attempts": c.attempts,
                "new_last_status": c.last_status,
                "new_last_error": _truncate(c.last_error),
                "new_attempted_at": c.attempted_at,
                "new_finished_at": c.finished_at,
                "new_worker": None if c.status is JobStatus.PENDING else worker,
            }
            for c in changes
        ]
        await self._conn.execute(_SETTLE, rows)

    async def get(self, job_id: str) -> Job | None:
        row = (await self._conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).first()
        return to_job(row) if row else None

    async def for_event(self, event_id: str) -> list[Job]:
        query = sa.select(jobs).where(jobs.c.event_id == event_id).order_by(jobs.c.seq)
        return [to_job(r) for r in (await self._conn.execute(query)).all()]

    async def attempts(self, job_id: str) -> list[Attempt]:
        query = sa.select(job_attempts).where(job_attempts.c.job_id == job_id).order_by(job_attempts.c.seq)
        return [_to_attempt(r) for r in (await self._conn.execute(query)).all()]

    async def page_for_webhook(
        self, tenant: Tenant, webhook_id: str, kind: str, request: PageRequest
    ) -> RowPage:
        """A webhook's jobs of one kind, newest first (through ``ix_jobs_webhook``)."""
        where = sa.and_(
            jobs.c.webhook_id == webhook_id,
            jobs.c.account_id == tenant.account_id,
            jobs.c.livemode == tenant.livemode,
            jobs.c.kind == kind,
        )
        return await fetch_page(self._conn, jobs, where, request)

    async def first_attempts(self, job_ids: Collection[str]) -> dict[str, Attempt]:
        """Each job's first attempt, by job id (jobs with none are left out)."""
        if not job_ids:
            return {}
        query = (
            sa.select(job_attempts)
            .where(job_attempts.c.job_id.in_(list(job_ids)), job_attempts.c.attempt == 1)
            .order_by(job_attempts.c.seq)
        )
        found: dict[str, Attempt] = {}
        for row in (await self._conn.execute(query)).all():
            found.setdefault(row.job_id, _to_attempt(row))
        return found

    async def backlog(self, now_ms: int) -> list[JobBacklog]:
        """Unfinished jobs per kind and status, with the oldest due one's ``run_at`` (``/metrics``).

        Reads only pending and running rows, through ``ix_jobs_due``: finished jobs stay in the
        table for their history, and a scrape must not count them all every few seconds.
        """
        due = sa.case((jobs.c.run_at <= now_ms, jobs.c.run_at))
        query = (
            sa.select(jobs.c.kind, jobs.c.status, sa.func.count().label("n"), sa.func.min(due).label("due"))
            .where(jobs.c.status.in_([JobStatus.PENDING.value, JobStatus.RUNNING.value]))
            .group_by(jobs.c.kind, jobs.c.status)
            .order_by(jobs.c.kind, jobs.c.status)
        )
        return [
            JobBacklog(str(row.kind), str(row.status), int(row.n), None if row.due is None else int(row.due))
            for row in (await self._conn.execute(query)).all()
        ]

    async def counts(self) -> dict[str, int]:
        """Jobs per status: for operators, metrics and tests."""
        query = sa.select(jobs.c.status, sa.func.count().label("n")).group_by(jobs.c.status)
        return {str(row.status): int(row.n) for row in (await self._conn.execute(query)).all()}


def job_columns(job: NewJob) -> dict[str, Any]:
    """A new job's row, column by column."""
    return {
        "id": job.id,
        "kind": job.kind,
        "account_id": job.account_id,
        "livemode": job.livemode,
        "event_id": job.event_id,
        "webhook_id": job.webhook_id,
        "payload": job.payload,
        "status": job.status.value,
        "attempts": job.attempts,
        "run_at": job.run_at,
        "lease_until": None,
        "worker": None,
        "last_status": job.last_status,
        "last_error": _truncate(job.last_error),
        "last_attempted_at": job.last_attempted_at,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }
