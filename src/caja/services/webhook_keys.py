"""Webhook keys: the RSA key pairs that sign deliveries (Conekta's ``Digest`` header).

Deliveries are signed with the tenant's newest active key; receivers verify with its public key.
A key pair takes tens of milliseconds of CPU to generate, so it is made off the event loop and
before the transaction opens.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from caja.delivery.keyring import SecretBox, generate_rsa_keypair
from caja.domain import ids
from caja.domain.clock import Clock
from caja.domain.errors import ResourceNotFoundError
from caja.domain.events import new_event
from caja.domain.paging import Page, PageRequest
from caja.domain.representations import webhook_key_json
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import WebhookKey
from caja.store.uow import UnitOfWork, UnitOfWorkFactory
from caja.store.webhook_keys import to_webhook_key

KeyPair = tuple[str, str]


async def new_keypair() -> KeyPair:
    """(public PEM, private PEM), generated in a worker thread."""
    return await asyncio.to_thread(generate_rsa_keypair)


async def issue(
    tx: UnitOfWork, box: SecretBox, tenant: Tenant, keypair: KeyPair, now: int, *, active: bool = True
) -> WebhookKey:
    """Store a key pair (the private half sealed) inside the caller's transaction, with its event."""
    public_pem, private_pem = keypair
    key = WebhookKey(
        id=ids.new_hex_id(),
        account_id=tenant.account_id,
        livemode=tenant.livemode,
        public_key=public_pem,
        active=active,
        created_at=now,
        deactivated_at=None if active else now,
    )
    await tx.webhook_keys.insert(key, box.seal(private_pem))
    tx.events.add(new_event(tenant, "webhook_key.created", webhook_key_json(key), now))
    return key


async def create(
    uow: UnitOfWorkFactory, clock: Clock, box: SecretBox, tenant: Tenant, active: bool = True
) -> WebhookKey:
    keypair = await new_keypair()
    now = clock.now()
    async with uow(write=True) as tx:
        return await issue(tx, box, tenant, keypair, now, active=active)


async def get(uow: UnitOfWorkFactory, tenant: Tenant, key_id: str) -> WebhookKey:
    async with uow() as tx:
        key = await tx.webhook_keys.get(tenant, key_id)
    if key is None:
        raise ResourceNotFoundError.entity("WebhookKey", key_id)
    return key


async def list_page(uow: UnitOfWorkFactory, tenant: Tenant, request: PageRequest) -> Page[WebhookKey]:
    async with uow() as tx:
        rows = await tx.webhook_keys.page(tenant, request)
    return Page([to_webhook_key(r) for r in rows.rows], rows.has_more, request)


async def update(
    uow: UnitOfWorkFactory, clock: Clock, tenant: Tenant, key_id: str, active: bool | None
) -> WebhookKey:
    """Turn a key on or off; an inactive key no longer signs (``deactivated_at`` says since when)."""
    now = clock.now()
    async with uow(write=True) as tx:
        key = await tx.webhook_keys.get(tenant, key_id, for_update=True)
        if key is None:
            raise ResourceNotFoundError.entity("WebhookKey", key_id)
        if active is None or active == key.active:
            return key
        changed = replace(key, active=active, deactivated_at=None if active else now)
        await tx.webhook_keys.update(
            tenant, key_id, {"active": changed.active, "deactivated_at": changed.deactivated_at}
        )
        previous = {"active": key.active, "deactivated_at": key.deactivated_at}
        tx.events.add(new_event(tenant, "webhook_key.updated", webhook_key_json(changed), now, previous))
    return changed


async def delete(uow: UnitOfWorkFactory, clock: Clock, tenant: Tenant, key_id: str) -> WebhookKey:
    now = clock.now()
    async with uow(write=True) as tx:
        key = await tx.webhook_keys.get(tenant, key_id, for_update=True)
        if key is None:
            raise ResourceNotFoundError.entity("WebhookKey", key_id)
        deleted = replace(key, active=False, deactivated_at=key.deactivated_at or now, deleted_at=now)
        await tx.webhook_keys.update(
            tenant,
            key_id,
            {"active": False, "deactivated_at": deleted.deactivated_at, "deleted_at": now},
        )
        tx.events.add(new_event(tenant, "webhook_key.deleted", webhook_key_json(deleted), now))
    return deleted
