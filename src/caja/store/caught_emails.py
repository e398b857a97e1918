"""Messages the built-in mail catcher received, and whose they are."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from caja.domain.email_jobs import EmailJob
from caja.domain.jobs import JobKind, JobStatus
from caja.domain.mail import CaughtEmail, recipients_of
from caja.domain.paging import PageRequest
from caja.domain.tenancy import Tenant
from caja.store.connection import Conn
from caja.store.pagination import RowPage, fetch_page
from caja.store.tables import caught_emails, jobs


def to_caught_email(row: Any) -> CaughtEmail:
    return CaughtEmail(
        id=row.id,
        received_at=int(row.received_at),
        mail_from=row.mail_from,
        recipients=tuple(row.recipients or ()),
        subject=row.subject,
        message=row.message,
        account_id=row.account_id,
        livemode=None if row.livemode is None else bool(row.livemode),
        job_id=row.job_id,
    )


class CaughtEmailRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def insert(self, email: CaughtEmail) -> None:
        await self._conn.execute(
            caught_emails.insert(),
            {
                "id": email.id,
                "received_at": email.received_at,
                "mail_from": email.mail_from[:320],
                "recipients": list(email.recipients),
                "subject": email.subject[:500],
                "message": email.message,
                "account_id": email.account_id,
                "livemode": email.livemode,
                "job_id": email.job_id,
            },
        )

    async def owner_of_job(self, job_id: str) -> Tenant | None:
        """The account and mode of the ``email`` job a message names, if there is such a job."""
        query = sa.select(jobs.c.account_id, jobs.c.livemode).where(
            jobs.c.id == job_id, jobs.c.kind == JobKind.EMAIL.value
        )
        row = (await self._conn.execute(query)).first()
        return Tenant(row.account_id, bool(row.livemode)) if row else None

    async def email_job(self, tenant: Tenant, job_id: str) -> EmailJob | None:
        """The tenant's ``email`` job, with the latest message the catcher received from it."""
        latest_caught = (
            sa.select(caught_emails.c.id)
            .where(caught_emails.c.job_id == jobs.c.id)
            .order_by(caught_emails.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = sa.select(jobs, latest_caught.label("caught_email_id")).where(
            jobs.c.id == job_id,
            jobs.c.kind == JobKind.EMAIL.value,
            jobs.c.account_id == tenant.account_id,
            jobs.c.livemode.is_(tenant.livemode),
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        payload = row.payload if isinstance(row.payload, dict) else {}
        template = payload.get("template")
        return EmailJob(
            id=row.id,
            livemode=bool(row.livemode),
            to=recipients_of(payload),
            template=template if isinstance(template, str) else None,
            status=JobStatus(row.status),
            attempts=int(row.attempts),
            run_at=int(row.run_at),
            created_at=int(row.created_at),
            last_error=row.last_error,
            last_attempted_at=row.last_attempted_at,
            finished_at=row.finished_at,
            caught_email_id=row.caught_email_id,
        )

    @staticmethod
    def _visible_to(tenant: Tenant, *, sandbox: bool) -> sa.ColumnElement[bool]:
        owned = sa.and_(
            caught_emails.c.account_id == tenant.account_id, caught_emails.c.livemode.is_(tenant.livemode)
        )
        if sandbox and not tenant.livemode:
            # Messages that name no job of Caja's came from elsewhere: the sandbox account sees them.
            return sa.or_(owned, caught_emails.c.account_id.is_(None))
        return owned

    async def page(self, tenant: Tenant, request: PageRequest, *, sandbox: bool) -> RowPage:
        scope = self._visible_to(tenant, sandbox=sandbox)
        where = scope
        if request.search:
            like = f"%{request.search.lower()}%"
            where = sa.and_(
                where,
                sa.or_(
                    caught_emails.c.id == request.search,
                    sa.func.lower(caught_emails.c.subject).like(like),
                    sa.func.lower(caught_emails.c.mail_from).like(like),
                    sa.func.lower(sa.cast(caught_emails.c.recipients, sa.Text)).like(like),
                ),
            )
        return await fetch_page(self._conn, caught_emails, where, request, cursor_scope=scope)

    async def get(self, tenant: Tenant, email_id: str, *, sandbox: bool) -> CaughtEmail | None:
        query = sa.select(caught_emails).where(
            self._visible_to(tenant, sandbox=sandbox), caught_emails.c.id == email_id
        )
        row = (await self._conn.execute(query)).first()
        return to_caught_email(row) if row else None
