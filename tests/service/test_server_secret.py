"""Changing CAJA_SECRET: refused with a clear error, or re-sealed when the old secret is given."""

from __future__ import annotations

import pytest

from caja.delivery.keyring import CANARY_NAME, ServerSecretMismatchError, load_secret_box
from caja.domain.clock import FixedClock
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import NewWebhook
from caja.services import accounts, networks, webhooks
from caja.store.db import Database
from caja.store.tables import server_secrets
from caja.store.uow import UnitOfWorkFactory


async def test_a_new_secret_needs_the_old_one_once(uow: UnitOfWorkFactory, clock: FixedClock) -> None:
    old = await load_secret_box(uow, clock, "the-old-secret")
    issued = await accounts.create_account(uow, clock, "Comercio")
    tenant = Tenant(issued.account.id, livemode=False)
    hook = await webhooks.create(uow, clock, old, tenant, NewWebhook(url="http://127.0.0.1:9/hook"))
    network = await networks.create(uow, clock, old, "Red", livemode=False)
    rotated_network = await networks.rotate(uow, clock, old, network.network.id, grace=3600)

    with pytest.raises(ServerSecretMismatchError, match="CAJA_SECRET_PREVIOUS"):
        await load_secret_box(uow, clock, "the-new-secret")

    rotated = await load_secret_box(uow, clock, "the-new-secret", ["the-old-secret"])
    # Everything now opens under the new secret alone; the old one opens nothing any more.
    new_only = await load_secret_box(uow, clock, "the-new-secret")
    shown = await webhooks.get(uow, new_only, tenant, hook.id)
    assert shown.signing_secret == hook.signing_secret
    async with uow() as tx:
        found = await tx.networks.get(network.network.id)
    assert found is not None and found.previous_secret is not None
    # A network's secret in a rotation's grace period is re-sealed too, beside its current one.
    assert new_only.open(found.secret) == rotated_network.secret
    assert new_only.open(found.previous_secret) == network.secret
    assert rotated.opens_with_current(found.secret)
    with pytest.raises(ServerSecretMismatchError):
        await load_secret_box(uow, clock, "the-old-secret")


async def test_a_database_from_before_the_canary_is_checked_too(
    uow: UnitOfWorkFactory, clock: FixedClock, database: Database
) -> None:
    old = await load_secret_box(uow, clock, "the-old-secret")
    issued = await accounts.create_account(uow, clock, "Comercio")
    tenant = Tenant(issued.account.id, livemode=False)
    hook = await webhooks.create(uow, clock, old, tenant, NewWebhook(url="http://127.0.0.1:9/hook"))
    # As before this check existed: sealed values, and no canary.
    await database.run_sync(
        lambda conn: conn.execute(server_secrets.delete().where(server_secrets.c.name == CANARY_NAME))
    )
    with pytest.raises(ServerSecretMismatchError):
        await load_secret_box(uow, clock, "the-new-secret")
    await load_secret_box(uow, clock, "the-new-secret", ["the-old-secret"])
    shown = await webhooks.get(uow, await load_secret_box(uow, clock, "the-new-secret"), tenant, hook.id)
    assert shown.signing_secret == hook.signing_secret
