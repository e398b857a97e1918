"""Webhook rows; their signing secrets are sealed with the server secret before they are stored."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa

from caja.domain.paging import PageRequest
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import Webhook, WebhookStatus
from caja.store.connection import Conn
from caja.store.pagination import RowPage, fetch_page
from caja.store.tables import accounts, webhooks


class Endpoint(NamedTuple):
    url: str
    synchronous: bool
    # Active and not disabled: the dispatcher delivers to it.
    receiving: bool


class Sealer(Protocol):
    """What seals secrets at rest (``caja.delivery.keyring.SecretBox``), handed down by services."""

    def seal(self, plaintext: str) -> str: ...

    def open(self, token: str) -> str: ...


def _tenant_filter(tenant: Tenant) -> sa.ColumnElement[bool]:
    return sa.and_(webhooks.c.account_id == tenant.account_id, webhooks.c.livemode.is_(tenant.livemode))


_LIVE = webhooks.c.deleted_at.is_(None)
_INSERT = webhooks.insert()
# The few columns the event fan-out needs, for every webhook of one tenant (at most ten).
FANOUT_QUERY = sa.select(
    webhooks.c.id,
    webhooks.c.url,
    webhooks.c.subscribed_events,
    webhooks.c.status,
    webhooks.c.active,
    webhooks.c.synchronous,
).where(
    webhooks.c.account_id == sa.bindparam("account_id"),
    webhooks.c.livemode == sa.bindparam("livemode"),
    _LIVE,
)


class WebhookRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        # Whether this unit wrote webhooks: in-process caches of them are dropped once it commits.
        self.changed = False

    async def lock_tenant(self, tenant: Tenant) -> None:
        """Serialise webhook creation per account (the per-tenant limit, the first webhook key).

        ``FOR NO KEY UPDATE`` on the account row: it does not block inserts that reference the
        account (API keys), only other lockers. SQLite's single writer needs no lock.
        """
        await self._conn.execute(
            sa.select(accounts.c.id).where(accounts.c.id == tenant.account_id).with_for_update(key_share=True)
        )

    async def insert(self, webhook: Webhook, box: Sealer) -> None:
        self.changed = True
        await self._conn.execute(_INSERT, _columns(webhook, box))

    async def count(self, tenant: Tenant) -> int:
        query = sa.select(sa.func.count()).select_from(webhooks).where(_tenant_filter(tenant), _LIVE)
        return int(await self._conn.scalar(query) or 0)

    async def get(
        self, tenant: Tenant, webhook_id: str, box: Sealer, *, for_update: bool = False
    ) -> Webhook | None:
        query = sa.select(webhooks).where(_tenant_filter(tenant), webhooks.c.id == webhook_id, _LIVE)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return to_webhook(row, box) if row else None

    async def targets(self, tenant: Tenant, webhook_ids: list[str]) -> dict[str, Endpoint]:
        """Where those of ``webhook_ids`` that are the tenant's (not deleted) receive events."""
        if not webhook_ids:
            return {}
        query = sa.select(
            webhooks.c.id, webhooks.c.url, webhooks.c.synchronous, webhooks.c.active, webhooks.c.status
        ).where(_tenant_filter(tenant), _LIVE, webhooks.c.id.in_(webhook_ids))
        rows = (await self._conn.execute(query)).all()
        return {
            row.id: Endpoint(
                row.url, bool(row.synchronous), bool(row.active) and row.status != WebhookStatus.DISABLED
            )
            for row in rows
        }

    async def update(self, tenant: Tenant, webhook_id: str, values: dict[str, Any]) -> None:
        self.changed = True
        await self._conn.execute(
            webhooks.update().where(_tenant_filter(tenant), webhooks.c.id == webhook_id).values(**values)
        )

    async def page(self, tenant: Tenant, request: PageRequest, url: str | None = None) -> RowPage:
        where = sa.and_(_tenant_filter(tenant), _LIVE)
        if url:
            where = sa.and_(where, webhooks.c.url.ilike(f"%{_escape_like(url)}%", escape="\\"))
        if request.search:
            pattern = f"%{_escape_like(request.search)}%"
            where = sa.and_(
                where,
                sa.or_(
                    webhooks.c.id == request.search,
                    webhooks.c.url.ilike(pattern, escape="\\"),
                    webhooks.c.description.ilike(pattern, escape="\\"),
                ),
            )
        return await fetch_page(self._conn, webhooks, where, request, cursor_scope=_tenant_filter(tenant))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _columns(webhook: Webhook, box: Sealer) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "account_id": webhook.account_id,
        "livemode": webhook.livemode,
        "url": webhook.url,
        "description": webhook.description,
        "subscribed_events": list(webhook.subscribed_events),
        "status": webhook.status.value,
        "active": webhook.active,
        "synchronous": webhook.synchronous,
        "signing_secret": box.seal(webhook.signing_secret),
        "failing_since": webhook.failing_since,
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
        "deleted_at": webhook.deleted_at,
    }


def to_webhook(row: sa.Row[Any], box: Sealer) -> Webhook:
    return Webhook(
        id=row.id,
        account_id=row.account_id,
        livemode=bool(row.livemode),
        url=row.url,
        description=row.description,
        subscribed_events=tuple(row.subscribed_events or ()),
        status=WebhookStatus(row.status),
        active=bool(row.active),
        synchronous=bool(row.synchronous),
        signing_secret=box.open(row.signing_secret),
        failing_since=row.failing_since,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )
