"""Webhook key rows: RSA key pairs whose private halves are stored sealed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from caja.domain.paging import PageRequest
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import WebhookKey
from caja.store.connection import Conn
from caja.store.pagination import RowPage, fetch_page
from caja.store.tables import webhook_keys


def _tenant_filter(tenant: Tenant) -> sa.ColumnElement[bool]:
    return sa.and_(
        webhook_keys.c.account_id == tenant.account_id, webhook_keys.c.livemode.is_(tenant.livemode)
    )


_LIVE = webhook_keys.c.deleted_at.is_(None)
_ACTIVE = sa.and_(_LIVE, webhook_keys.c.active.is_(True))


class WebhookKeyRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def insert(self, key: WebhookKey, sealed_private_key: str) -> None:
        await self._conn.execute(
            webhook_keys.insert(),
            {
                "id": key.id,
                "account_id": key.account_id,
                "livemode": key.livemode,
                "public_key": key.public_key,
                "private_key": sealed_private_key,
                "active": key.active,
                "created_at": key.created_at,
                "deactivated_at": key.deactivated_at,
                "deleted_at": key.deleted_at,
            },
        )

    async def get(self, tenant: Tenant, key_id: str, *, for_update: bool = False) -> WebhookKey | None:
        query = sa.select(*_PUBLIC_COLUMNS).where(_tenant_filter(tenant), webhook_keys.c.id == key_id, _LIVE)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return to_webhook_key(row) if row else None

    async def has_active(self, tenant: Tenant) -> bool:
        query = sa.select(webhook_keys.c.seq).where(_tenant_filter(tenant), _ACTIVE).limit(1)
        return (await self._conn.execute(query)).first() is not None

    async def active_signing_key(self, tenant: Tenant) -> tuple[str, str] | None:
        """(id, sealed PEM private key) of the tenant's newest active key: it signs deliveries."""
        query = (
            sa.select(webhook_keys.c.id, webhook_keys.c.private_key)
            .where(_tenant_filter(tenant), _ACTIVE)
            .order_by(webhook_keys.c.seq.desc())
            .limit(1)
        )
        row = (await self._conn.execute(query)).first()
        return (row.id, row.private_key) if row else None

    async def update(self, tenant: Tenant, key_id: str, values: dict[str, Any]) -> None:
        await self._conn.execute(
            webhook_keys.update().where(_tenant_filter(tenant), webhook_keys.c.id == key_id).values(**values)
        )

    async def page(self, tenant: Tenant, request: PageRequest) -> RowPage:
        where = sa.and_(_tenant_filter(tenant), _LIVE)
        if request.search:
            where = sa.and_(where, webhook_keys.c.id == request.search)
        return await fetch_page(self._conn, webhook_keys, where, request, cursor_scope=_tenant_filter(tenant))


# Everything but the private key, which only the dispatcher reads (``active_signing_key``).
_PUBLIC_COLUMNS = [c for c in webhook_keys.columns if c.key != "private_key"]


def to_webhook_key(row: sa.Row[Any]) -> WebhookKey:
    return WebhookKey(
        id=row.id,
        account_id=row.account_id,
        livemode=bool(row.livemode),
        public_key=row.public_key,
        active=bool(row.active),
        created_at=row.created_at,
        deactivated_at=row.deactivated_at,
        deleted_at=row.deleted_at,
    )
