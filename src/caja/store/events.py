"""The event log and its fan-out: the transactional outbox.

Events are written in the same transaction as the change they describe, and so are their
deliveries: when a unit of work flushes its events (just before it commits), each event gets
one ``webhook`` job per webhook that should receive it. A change, its events and their
deliveries therefore commit together or not at all; the dispatcher only ever sends what was
committed, and it sends it at least once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from caja.domain import ids
from caja.domain.events import Event, WebhookLog
from caja.domain.jobs import JOB_ID_PREFIX, JobKind, JobStatus
from caja.domain.paging import PageRequest
from caja.domain.representations import delivered_event_json
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import is_subscribed, receives_ordinary_events
from caja.store.connection import Conn
from caja.store.jobs import JobRepository, NewJob
from caja.store.pagination import RowPage, fetch_page
from caja.store.prepared import Prepared
from caja.store.tables import events, job_attempts, jobs
from caja.store.webhooks import FANOUT_QUERY

_INSERT = Prepared(events.insert(), keys=["id", "account_id", "livemode", "type", "data", "created_at"])
_FANOUT = Prepared(FANOUT_QUERY)
_WEBHOOK_JOB = jobs.c.kind == JobKind.WEBHOOK.value


def _tenant_filter(tenant: Tenant) -> sa.ColumnElement[bool]:
    return sa.and_(events.c.account_id == tenant.account_id, events.c.livemode.is_(tenant.livemode))


def delivery_job(event: Event, webhook_id: str, url: str, run_at: int) -> NewJob:
    """One delivery of ``event`` to one webhook: the dispatcher POSTs ``payload["body"]`` to its URL."""
    return NewJob(
        id=ids.new_ordered_id(JOB_ID_PREFIX),
        kind=JobKind.WEBHOOK.value,
        account_id=event.tenant.account_id,
        livemode=event.tenant.livemode,
        event_id=event.id,
        webhook_id=webhook_id,
        payload={"url": url, "body": delivered_event_json(event)},
        run_at=run_at,
        created_at=run_at,
    )


class EventRepository:
    """Collects a unit's events and, just before it commits, writes them and their deliveries."""

    def __init__(self, conn: Conn, jobs: JobRepository | None = None) -> None:
        self._conn = conn
        self._jobs = jobs if jobs is not None else JobRepository(conn)
        self._pending: list[Event] = []

    def add(self, event: Event) -> None:
        self._pending.append(event)

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        await self._conn.run(_INSERT, [event_columns(event) for event in pending])
        await self._jobs.enqueue(*deliveries_of(pending, await self.webhooks_of(pending)))

    async def webhooks_of(self, pending: Iterable[Event]) -> dict[Tenant, Sequence[Any]]:
        """The webhooks that may receive these events: one query per tenant (usually one)."""
        webhooks: dict[Tenant, Sequence[Any]] = {}
        for tenant in dict.fromkeys(event.tenant for event in pending):
            params = {"account_id": tenant.account_id, "livemode": tenant.livemode}
            webhooks[tenant] = (await self._conn.run(_FANOUT, params)).all()
        return webhooks

    async def enqueue_deliveries(self, event: Event, targets: dict[str, str], run_at: int) -> list[str]:
        """New deliveries of an existing event to ``{webhook id: url}`` (a resend); their job ids."""
        deliveries = [delivery_job(event, webhook_id, url, run_at) for webhook_id, url in targets.items()]
        await self._jobs.enqueue(*deliveries)
        return [job.id for job in deliveries]

    async def cancel_deliveries(self, webhook_id: str, now_ms: int, reason: str) -> int:
        """Cancel a webhook's deliveries not yet started (it was deleted, or stopped receiving)."""
        stmt = (
            jobs.update()
            .where(jobs.c.webhook_id == webhook_id, _WEBHOOK_JOB, jobs.c.status == JobStatus.PENDING.value)
            .values(status=JobStatus.CANCELLED.value, finished_at=now_ms, last_error=reason[:500])
        )
        return int((await self._conn.execute(stmt)).rowcount)

    async def retarget_deliveries(self, webhook_id: str, url: str) -> int:
        """Send a webhook's deliveries not yet started to its new URL."""
        payload: Any
        if self._conn.dialect.name == "postgresql":
            path = sa.cast(sa.literal("{url}"), postgresql.ARRAY(sa.Text))
            payload = sa.func.jsonb_set(jobs.c.payload, path, sa.func.to_jsonb(sa.cast(url, sa.Text)))
        else:
            payload = sa.func.json_set(jobs.c.payload, "$.url", url)
        stmt = (
            jobs.update()
            .where(jobs.c.webhook_id == webhook_id, _WEBHOOK_JOB, jobs.c.status == JobStatus.PENDING.value)
            .values(payload=payload)
        )
        return int((await self._conn.execute(stmt)).rowcount)

    async def get(self, tenant: Tenant, event_id: str) -> Event | None:
        row = (
            await self._conn.execute(sa.select(events).where(_tenant_filter(tenant), events.c.id == event_id))
        ).first()
        return to_event(row) if row else None

    async def page(self, tenant: Tenant, request: PageRequest, event_type: str | None = None) -> RowPage:
        where = _tenant_filter(tenant)
        if event_type:
            where = sa.and_(where, events.c.type == event_type)
        if request.search:
            where = sa.and_(where, sa.or_(events.c.id == request.search, events.c.type == request.search))
        return await fetch_page(self._conn, events, where, request, cursor_scope=_tenant_filter(tenant))

    async def logs(self, event_ids: Sequence[str]) -> dict[str, list[WebhookLog]]:
        """The webhook deliveries of each event, oldest first, with what their last attempt got back."""
        found: dict[str, list[WebhookLog]] = {event_id: [] for event_id in event_ids}
        if not found:
            return found
        query = (
            sa.select(
                jobs.c.id,
                jobs.c.event_id,
                jobs.c.webhook_id,
                jobs.c.payload["url"].as_string().label("url"),
                jobs.c.status,
                jobs.c.attempts,
                jobs.c.last_status,
                jobs.c.last_attempted_at,
            )
            .where(jobs.c.event_id.in_(list(found)), _WEBHOOK_JOB)
            .order_by(jobs.c.seq)
        )
        rows = (await self._conn.execute(query)).all()
        bodies = await self._last_response_bodies([row.id for row in rows if row.attempts])
        for row in rows:
            attempts = int(row.attempts)
            attempted_ms = row.last_attempted_at
            succeeded = row.status == JobStatus.SUCCEEDED.value
            found[row.event_id].append(
                WebhookLog(
                    id=row.id,
                    event_id=row.event_id,
                    webhook_id=row.webhook_id,
                    url=row.url or "",
                    status=row.status,
                    failed_attempts=max(attempts - 1, 0) if succeeded else attempts,
                    last_http_status=row.last_status,
                    last_attempted_at=None if attempted_ms is None else attempted_ms // 1000,
                    response_body=bodies.get(row.id),
                )
            )
        return found

    async def _last_response_bodies(self, job_ids: list[str]) -> dict[str, str | None]:
        if not job_ids:
            return {}
        latest = (
            sa.select(sa.func.max(job_attempts.c.seq))
            .where(job_attempts.c.job_id.in_(job_ids))
            .group_by(job_attempts.c.job_id)
        )
        query = sa.select(job_attempts.c.job_id, job_attempts.c.response_body).where(
            job_attempts.c.seq.in_(latest.scalar_subquery())
        )
        return {row.job_id: row.response_body for row in (await self._conn.execute(query)).all()}


def deliveries_of(pending: Iterable[Event], webhooks: Mapping[Tenant, Sequence[Any]]) -> list[NewJob]:
    """The fan-out: one delivery job per event and per webhook (of ``webhooks_of``) that should get it."""
    deliveries: list[NewJob] = []
    for event in pending:
        for hook in webhooks[event.tenant]:
            if event.webhook_ids is not None:
                wanted = hook.id in event.webhook_ids
            else:
                wanted = receives_ordinary_events(
                    active=bool(hook.active),
                    deleted=False,
                    status=hook.status,
                    synchronous=bool(hook.synchronous),
                ) and is_subscribed(hook.subscribed_events or (), event.type)
            if wanted:
                # Due at the event's own time, which the service took from its clock.
                deliveries.append(delivery_job(event, hook.id, hook.url, event.created_at * 1000))
    return deliveries


def event_columns(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "account_id": event.tenant.account_id,
        "livemode": event.tenant.livemode,
        "type": event.type,
        "data": event.data,
        "created_at": event.created_at,
    }


def to_event(row: sa.Row[Any]) -> Event:
    data: dict[str, Any] = row.data or {}
    return Event(
        id=row.id,
        tenant=Tenant(account_id=row.account_id, livemode=bool(row.livemode)),
        type=row.type,
        object=data.get("object") or {},
        created_at=row.created_at,
        previous_attributes=data.get("previous_attributes") or {},
        data_override=data,
    )
