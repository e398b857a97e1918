"""What the delivery machinery reads and writes about webhooks: where to send, and their health.

Kept apart from the merchant-facing webhook repositories: the dispatcher needs only the few
columns it signs and sends with, and it alone changes a webhook's delivery health.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from caja.domain.jobs import Health
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import Webhook, WebhookStatus
from caja.store.connection import Conn
from caja.store.prepared import Prepared
from caja.store.tables import webhooks


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
    deleted_at: int | None
    description: str | None
    subscribed_events: list[str]
    created_at: int
    updated_at: int

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def deliverable(self) -> bool:
        return self.active and not self.deleted and self.status != WebhookStatus.DISABLED

    @property
    def health(self) -> Health:
        return Health(self.status, self.failing_since)

    def as_webhook(self) -> Webhook:
        """The domain webhook, without its secret (for event payloads, which never carry it)."""
        return Webhook(
            id=self.id,
            account_id=self.account_id,
            livemode=self.livemode,
            url=self.url,
            description=self.description,
            subscribed_events=tuple(self.subscribed_events),
            status=WebhookStatus(self.status),
            active=self.active,
            synchronous=self.synchronous,
            signing_secret="",
            failing_since=self.failing_since,
            created_at=self.created_at,
            updated_at=self.updated_at,
            deleted_at=self.deleted_at,
        )


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
        deleted_at=row.deleted_at,
        description=row.description,
        subscribed_events=list(row.subscribed_events or []),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# On every store lookup and payment: compiled once (see caja.store.prepared).
_SYNCHRONOUS_WEBHOOKS = Prepared(
    sa.select(webhooks)
    .where(
        webhooks.c.account_id == sa.bindparam("account_id"),
        webhooks.c.livemode == sa.bindparam("livemode"),
        webhooks.c.synchronous.is_(True),
        webhooks.c.active.is_(True),
        webhooks.c.deleted_at.is_(None),
        webhooks.c.status != WebhookStatus.DISABLED.value,
    )
    .order_by(webhooks.c.seq)
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
        params = {"account_id": tenant.account_id, "livemode": tenant.livemode}
        return [_target(r) for r in (await self._conn.run(_SYNCHRONOUS_WEBHOOKS, params)).all()]

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
