"""A store network's credentials over their life: rotation with a grace period, revocation, and
what every process that checks signatures sees of them (both backends)."""

from __future__ import annotations

import asyncio

import pytest

from caja.delivery.keyring import SecretBox
from caja.domain.clock import FixedClock
from caja.domain.errors import AuthenticationError, ResourceNotFoundError
from caja.domain.networks import sign
from caja.domain.tenancy import Tenant
from caja.services import networks
from caja.services.networks import NetworkAuthenticator
from caja.store.uow import UnitOfWorkFactory

BOX = SecretBox(b"network credentials test secret")
PATH = "/network/v1/lookups"
BODY = b'{"reference":"1","store":"x"}'
HOUR = 3600


async def accepted(checker: NetworkAuthenticator, clock: FixedClock, network_id: str, *secrets: str) -> bool:
    """Whether ``checker`` accepts a call signed with ``secrets`` (several: one header, space-separated)."""
    stamp = str(clock.now())
    signature = " ".join(sign(secret, stamp, "POST", PATH, BODY) for secret in secrets)
    try:
        await checker.authenticate(network_id, stamp, signature, "POST", PATH, BODY)
    except AuthenticationError:
        return False
    return True


async def test_a_rotation_keeps_the_old_secret_for_its_grace_period_only(
    uow: UnitOfWorkFactory, clock: FixedClock
) -> None:
    issued = await networks.create(uow, clock, BOX, "Red Norte", livemode=True)
    checker = NetworkAuthenticator(uow, clock, BOX)
    assert await accepted(checker, clock, issued.network.id, issued.secret)

    rotated = await networks.rotate(uow, clock, BOX, issued.network.id, grace=HOUR)

    assert rotated.secret != issued.secret
    assert rotated.network.previous_secret_expires_at == clock.now() + HOUR
    assert await accepted(checker, clock, issued.network.id, rotated.secret)
    assert await accepted(checker, clock, issued.network.id, issued.secret)
    assert await accepted(checker, clock, issued.network.id, "nsk_wrong", rotated.secret)
    assert not await accepted(checker, clock, issued.network.id, "nsk_wrong")
    clock.advance(HOUR)
    assert not await accepted(checker, clock, issued.network.id, issued.secret)
    assert await accepted(checker, clock, issued.network.id, rotated.secret)


async def test_a_second_rotation_retires_the_oldest_secret_and_grace_zero_retires_at_once(
    uow: UnitOfWorkFactory, clock: FixedClock
) -> None:
    first = await networks.create(uow, clock, BOX, "Red Sur", livemode=True)
    second = await networks.rotate(uow, clock, BOX, first.network.id, grace=HOUR)
    third = await networks.rotate(uow, clock, BOX, first.network.id, grace=HOUR)
    checker = NetworkAuthenticator(uow, clock, BOX)
    assert not await accepted(checker, clock, first.network.id, first.secret)
    assert await accepted(checker, clock, first.network.id, second.secret)
    assert await accepted(checker, clock, first.network.id, third.secret)

    leaked = await networks.rotate(uow, clock, BOX, first.network.id, grace=0)
    fresh = NetworkAuthenticator(uow, clock, BOX)
    assert not await accepted(fresh, clock, first.network.id, third.secret)
    assert await accepted(fresh, clock, first.network.id, leaked.secret)
    with pytest.raises(ValueError, match="negative"):
        await networks.rotate(uow, clock, BOX, first.network.id, grace=-1)


async def test_another_process_accepts_the_new_secret_at_once(
    uow: UnitOfWorkFactory, clock: FixedClock
) -> None:
    issued = await networks.create(uow, clock, BOX, "Red Centro", livemode=True)
    serving = NetworkAuthenticator(uow, clock, BOX)  # a server that has the old secret cached
    assert await accepted(serving, clock, issued.network.id, issued.secret)
    clock.advance(1)
    rotated = await networks.rotate(uow, clock, BOX, issued.network.id, grace=HOUR)  # the CLI
    assert await accepted(serving, clock, issued.network.id, rotated.secret)


async def test_a_revoked_network_is_refused_and_listed_as_revoked(
    uow: UnitOfWorkFactory, clock: FixedClock
) -> None:
    issued = await networks.create(uow, clock, BOX, "Red Oeste", livemode=False)
    checker = NetworkAuthenticator(uow, clock, BOX)

    revoked = await networks.revoke(uow, clock, issued.network.id)

    assert revoked.revoked_at == clock.now()
    assert not await accepted(checker, clock, issued.network.id, issued.secret)
    assert (await networks.revoke(uow, clock, issued.network.id)).revoked_at == revoked.revoked_at
    with pytest.raises(ResourceNotFoundError):
        await networks.rotate(uow, clock, BOX, issued.network.id, grace=HOUR)
    listed = {network.id: network for network in await networks.list_networks(uow)}
    assert listed[issued.network.id].revoked_at == revoked.revoked_at


async def test_unknown_and_sandbox_networks_cannot_be_rotated_or_revoked(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant
) -> None:
    sandbox = await networks.sandbox_for(uow, clock, BOX, tenant)
    for network_id in ("net_unknown", sandbox.network.id):
        with pytest.raises(ResourceNotFoundError):
            await networks.rotate(uow, clock, BOX, network_id, grace=HOUR)
        with pytest.raises(ResourceNotFoundError):
            await networks.revoke(uow, clock, network_id)
    assert sandbox.network.id not in {network.id for network in await networks.list_networks(uow)}
    checker = NetworkAuthenticator(uow, clock, BOX)
    assert await accepted(checker, clock, sandbox.network.id, sandbox.secret)


async def test_an_accounts_first_calls_at_once_share_one_sandbox_network(
    uow: UnitOfWorkFactory, clock: FixedClock, tenant: Tenant
) -> None:
    """Concurrent first uses (``POST /payment_test``s, the cashier) race to make it: the losers
    find the winner's, even before its group commit on SQLite has committed."""
    made = await asyncio.gather(*(networks.sandbox_for(uow, clock, BOX, tenant) for _ in range(8)))
    assert len({issued.network.id for issued in made}) == 1
    assert len({issued.secret for issued in made}) == 1
