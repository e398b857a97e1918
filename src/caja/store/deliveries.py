"""What the delivery machinery reads and writes about webhooks: targets, signing keys, health.

Kept apart from the merchant-facing webhook repositories: the dispatcher needs only the few
columns it signs and sends with, and it alone changes a webhook's delivery health.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from caja.domain.jobs import Health
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import WebhookStatus
from caja.store.connection import Conn
from caja.store.tables import webhook_keys, webhooks


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    id: str
    account_id: str
    livemode: bool
    url: str
    status: str
    active: bool
    synchronous: bool
    sealed_secret: str
    failing_since: int | None
    deleted: bool
    description: str | None
    subscribed_events: list[str]

    @property
    def deliverable(self) -> bool:
        return self.active and not self.deleted and self.status != WebhookStatus.DISABLED

    @property
    def health(self) -> Health:
        return Health(self.status, self.failing_since)

    def as_json(self) -> dict[str, Any]:
        """Conekta's webhook shape (``webhook_response``), for the ``webhook.disabled`` event."""
        return {
            "id": self.id,
            "object": "webhook",
            "livemode": self.livemode,
            "url": self.url,
            "description": self.description,
            "status": self.status,
            "active": self.active,
            "synchronous": self.synchronous,
            "subscribed_events": list(self.subscribed_events),
        }


@dataclass(frozen=True, slots=True)
class SealedKey:
    id: str
    sealed_private_key: str


def _target(row: Any) -> WebhookTarget:
    return WebhookTarget(
        id=row.id,
        account_id=row.account_id,
        livemode=bool(row.livemode),
        url=row.url,
        status=row.status,
        active=bool(row.active),
        synchronous=bool(row.synchronous),
        sealed_secret=row.signing_secret,
        failing_since=row.failing_since,
        deleted=row.deleted_at is not None,
        description=row.description,
        subscribed_events=list(row.subscribed_events or []),
    )


class DeliveryRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def webhook(self, webhook_id: str, *, for_update: bool = False) -> WebhookTarget | None:
        query = sa.select(webhooks).where(webhooks.c.id == webhook_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _target(row) if row else None

    async def synchronous_webhooks(self, tenant: Tenant) -> list[WebhookTarget]:
        """The tenant's live approval endpoints, oldest first."""
        query = (
            sa.select(webhooks)
            .where(
                webhooks.c.account_id == tenant.account_id,
                webhooks.c.livemode == tenant.livemode,
                webhooks.c.synchronous.is_(True),
                webhooks.c.active.is_(True),
                webhooks.c.deleted_at.is_(None),
                webhooks.c.status != WebhookStatus.DISABLED.value,
            )
            .order_by(webhooks.c.seq)
        )
        return [_target(r) for r in (await self._conn.execute(query)).all()]

    async def signing_key(self, tenant: Tenant) -> SealedKey | None:
        """The tenant's newest active webhook key, which signs the ``Digest`` header."""
        query = (
            sa.select(webhook_keys.c.id, webhook_keys.c.private_key)
            .where(
                webhook_keys.c.account_id == tenant.account_id,
                webhook_keys.c.livemode == tenant.livemode,
                webhook_keys.c.active.is_(True),
                webhook_keys.c.deleted_at.is_(None),
            )
            .order_by(webhook_keys.c.seq.desc())
            .limit(1)
        )
        row = (await self._conn.execute(query)).first()
        return SealedKey(row.id, row.private_key) if row else None

    async def set_health(
        self, webhook_id: str, health: Health, now: int, *, deactivate: bool = False
    ) -> None:
        values: dict[str, Any] = {
            "status": health.status,
            "failing_since": health.failing_since,
            "updated_at": now,
        }
        if deactivate:
            values["active"] = False
        await self._conn.execute(webhooks.update().where(webhooks.c.id == webhook_id).values(**values))

    async def mark_listening(self, webhook_id: str, now: int) -> bool:
        """After a delivered event: ``listening``, no run of failures. Touches the row only if it changes."""
        stmt = (
            webhooks.update()
            .where(
                webhooks.c.id == webhook_id,
                webhooks.c.status != WebhookStatus.DISABLED.value,
                sa.or_(
                    webhooks.c.status != WebhookStatus.LISTENING.value, webhooks.c.failing_since.is_not(None)
                ),
            )
            .values(status=WebhookStatus.LISTENING.value, failing_since=None, updated_at=now)
        )
        return int((await self._conn.execute(stmt)).rowcount) == 1
