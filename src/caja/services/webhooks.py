"""Registering, changing, testing and deleting the endpoints an account's events are delivered to."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from caja.delivery.keyring import SecretBox, new_signing_secret
from caja.domain import ids
from caja.domain.approval_log import ApprovalCall
from caja.domain.clock import Clock
from caja.domain.errors import ParameterValidationError, ProcessingError, ResourceNotFoundError
from caja.domain.events import new_event, new_ping_event
from caja.domain.jobs import JobKind
from caja.domain.paging import Page, PageRequest
from caja.domain.representations import webhook_json
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import (
    MAX_WEBHOOKS_PER_TENANT,
    UPDATABLE_FIELDS,
    NewWebhook,
    Webhook,
    WebhookStatus,
    check_subscriptions,
    check_url,
)
from caja.services import webhook_keys
from caja.store.jobs import to_job
from caja.store.uow import UnitOfWork, UnitOfWorkFactory
from caja.store.webhooks import to_webhook


def _not_receiving(webhook_id: str) -> ProcessingError:
    return ProcessingError.with_detail(
        code="conekta.errors.processing.webhook.not_receiving",
        message_es="El webhook está inactivo o deshabilitado.",
        message_en="The webhook is inactive or disabled.",
        debug_message=(
            f'The webhook "{webhook_id}" is inactive or disabled and receives nothing: '
            'turn it back on with PUT {"active": true}, which also pings it.'
        ),
        param="id",
    )


def _limit_reached() -> ProcessingError:
    return ProcessingError.with_detail(
        code="conekta.errors.processing.webhook.limit_exceeded",
        message_es=f"Se permiten a lo más {MAX_WEBHOOKS_PER_TENANT} webhooks por modo.",
        message_en=f"At most {MAX_WEBHOOKS_PER_TENANT} webhooks are allowed per mode.",
        debug_message=(
            f"This account already has {MAX_WEBHOOKS_PER_TENANT} webhooks in this mode: "
            "delete one before creating another."
        ),
    )


async def create(
    uow: UnitOfWorkFactory, clock: Clock, box: SecretBox, tenant: Tenant, request: NewWebhook
) -> Webhook:
    """A new webhook starts ``being_pinged``: a ``webhook_ping`` goes to it at once (once it is
    active, if created inactive).

    The tenant gets a webhook key (to sign deliveries) if it has no active one yet.
    """
    url = check_url(request.url, livemode=tenant.livemode)
    subscribed = check_subscriptions(request.subscribed_events)
    now = clock.now()
    # Generating an RSA key takes a while: do it before the transaction, and only when needed.
    async with uow() as tx:
        needs_key = not await tx.webhook_keys.has_active(tenant)
    keypair = await webhook_keys.new_keypair() if needs_key else None
    webhook = Webhook(
        id=ids.new_hex_id(),
        account_id=tenant.account_id,
        livemode=tenant.livemode,
        url=url,
        description=request.description,
        subscribed_events=subscribed,
        status=WebhookStatus.BEING_PINGED,
        active=request.active,
        synchronous=request.synchronous,
        signing_secret=new_signing_secret(),
        failing_since=None,
        created_at=now,
        updated_at=now,
    )
    async with uow(write=True) as tx:
        await tx.webhooks.lock_tenant(tenant)
        if await tx.webhooks.count(tenant) >= MAX_WEBHOOKS_PER_TENANT:
            raise _limit_reached()
        await tx.webhooks.insert(webhook, box)
        if not await tx.webhook_keys.has_active(tenant):
            # Rare: another request removed the key since we looked.
            await webhook_keys.issue(tx, box, tenant, keypair or await webhook_keys.new_keypair(), now)
        tx.events.add(new_event(tenant, "webhook.created", webhook_json(webhook), now))
        if webhook.active:
            tx.events.add(new_ping_event(tenant, webhook.id, now))
    return webhook


async def _load(
    tx: UnitOfWork, box: SecretBox, tenant: Tenant, webhook_id: str, *, for_update: bool = False
) -> Webhook:
    webhook = await tx.webhooks.get(tenant, webhook_id, box, for_update=for_update)
    if webhook is None:
        raise ResourceNotFoundError.entity("Webhook", webhook_id)
    return webhook


async def get(uow: UnitOfWorkFactory, box: SecretBox, tenant: Tenant, webhook_id: str) -> Webhook:
    async with uow() as tx:
        return await _load(tx, box, tenant, webhook_id)


async def list_page(
    uow: UnitOfWorkFactory, box: SecretBox, tenant: Tenant, request: PageRequest, url: str | None = None
) -> Page[Webhook]:
    async with uow() as tx:
        rows = await tx.webhooks.page(tenant, request, url)
    return Page([to_webhook(r, box) for r in rows.rows], rows.has_more, request)


def _checked_changes(changes: dict[str, Any], tenant: Tenant) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in UPDATABLE_FIELDS:
            raise ParameterValidationError.invalid(name, "This field cannot be updated.")
        if value is None and name != "description":
            raise ParameterValidationError.invalid(name, "It may not be null.")
        if name == "url":
            value = check_url(value, livemode=tenant.livemode)
        elif name == "subscribed_events":
            value = check_subscriptions(value)
        checked[name] = value
    return checked


async def update(
    uow: UnitOfWorkFactory,
    clock: Clock,
    box: SecretBox,
    tenant: Tenant,
    webhook_id: str,
    changes: dict[str, Any],
) -> Webhook:
    """Change the fields sent.

    A new URL, or ``active: true`` on a webhook Caja disabled, starts it over: ``being_pinged``
    with a fresh ``webhook_ping``. Deliveries not yet started follow a new URL, and are cancelled
    when the webhook stops receiving events (``active: false`` or ``synchronous: true``).
    """
    changes = _checked_changes(changes, tenant)
    now = clock.now()
    async with uow(write=True) as tx:
        before = await _load(tx, box, tenant, webhook_id, for_update=True)
        previous = {
            name: getattr(before, name) for name, value in changes.items() if getattr(before, name) != value
        }
        restart = "url" in previous or (
            changes.get("active") is True and before.status is WebhookStatus.DISABLED
        )
        if not previous and not restart:
            return before
        after = replace(before, **changes, updated_at=now)
        values: dict[str, Any] = {name: _column(value) for name, value in changes.items()}
        values["updated_at"] = now
        if restart:
            if before.status is not WebhookStatus.BEING_PINGED:
                previous["status"] = before.status.value
            after = replace(after, status=WebhookStatus.BEING_PINGED, failing_since=None)
            values.update(status=after.status.value, failing_since=None)
        await tx.webhooks.update(tenant, webhook_id, values)
        if ("active" in previous and not after.active) or ("synchronous" in previous and after.synchronous):
            await tx.events.cancel_deliveries(webhook_id, clock.now_ms(), "webhook stopped receiving events")
        elif "url" in previous:
            await tx.events.retarget_deliveries(webhook_id, after.url)
        tx.events.add(new_event(tenant, "webhook.updated", webhook_json(after), now, previous))
        # An inactive webhook is pinged when it is turned on, if it never answered one yet.
        turned_on = "active" in previous and after.status is WebhookStatus.BEING_PINGED
        if after.active and (restart or turned_on):
            tx.events.add(new_ping_event(tenant, webhook_id, now))
    return after


def _column(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


async def delete(
    uow: UnitOfWorkFactory, clock: Clock, box: SecretBox, tenant: Tenant, webhook_id: str
) -> Webhook:
    """A deleted webhook receives nothing more: its deliveries not yet started are cancelled."""
    now = clock.now()
    async with uow(write=True) as tx:
        webhook = await _load(tx, box, tenant, webhook_id, for_update=True)
        await tx.webhooks.update(tenant, webhook_id, {"deleted_at": now, "updated_at": now})
        await tx.events.cancel_deliveries(webhook_id, clock.now_ms(), "webhook deleted")
        deleted = replace(webhook, deleted_at=now, updated_at=now)
        tx.events.add(new_event(tenant, "webhook.deleted", webhook_json(deleted), now))
    return deleted


async def test(
    uow: UnitOfWorkFactory, clock: Clock, box: SecretBox, tenant: Tenant, webhook_id: str
) -> Webhook:
    """Send the webhook a ``webhook_ping`` now, whatever its subscriptions (422 if it is inactive
    or disabled: it would receive nothing)."""
    now = clock.now()
    async with uow(write=True) as tx:
        webhook = await _load(tx, box, tenant, webhook_id)
        if not webhook.active or webhook.status is WebhookStatus.DISABLED:
            raise _not_receiving(webhook_id)
        tx.events.add(new_ping_event(tenant, webhook_id, now))
    return webhook


async def approval_calls(
    uow: UnitOfWorkFactory, box: SecretBox, tenant: Tenant, webhook_id: str, request: PageRequest
) -> Page[ApprovalCall]:
    """A synchronous webhook's approval calls, newest first: what Caja sent, what came back."""
    async with uow() as tx:
        await _load(tx, box, tenant, webhook_id)  # 404 for another tenant's or a deleted webhook
        rows = await tx.jobs.page_for_webhook(tenant, webhook_id, JobKind.APPROVAL.value, request)
        jobs = [to_job(row) for row in rows.rows]
        attempts = await tx.jobs.first_attempts([job.id for job in jobs])
    return Page([ApprovalCall(job, attempts.get(job.id)) for job in jobs], rows.has_more, request)


async def synchronous(uow: UnitOfWorkFactory, box: SecretBox, tenant: Tenant) -> list[Webhook]:
    """The tenant's synchronous webhooks, oldest first (at most MAX_WEBHOOKS_PER_TENANT)."""
    async with uow() as tx:
        rows = await tx.webhooks.page(tenant, PageRequest(limit=MAX_WEBHOOKS_PER_TENANT))
    found = [to_webhook(row, box) for row in rows.rows]
    return sorted((hook for hook in found if hook.synchronous), key=lambda hook: hook.created_at)
