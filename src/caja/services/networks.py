"""Store networks: issuing their credentials and recognising their signed requests."""

from __future__ import annotations

from dataclasses import dataclass

from caja.delivery.keyring import SecretBox
from caja.domain import ids
from caja.domain.clock import Clock
from caja.domain.errors import AuthenticationError, ForbiddenError, InternalError, ResourceNotFoundError
from caja.domain.networks import MISMATCH, NETWORK_ID_PREFIX, Network, new_secret, verify
from caja.domain.tenancy import Tenant
from caja.store.uow import UnitOfWorkFactory

SANDBOX_NETWORK_NAME = "Tienda de pruebas"
CACHE_SECONDS = 30


@dataclass(frozen=True, slots=True)
class IssuedNetwork:
    network: Network
    secret: str  # shown once, never stored in the clear


async def create(
    uow: UnitOfWorkFactory,
    clock: Clock,
    box: SecretBox,
    name: str,
    *,
    livemode: bool,
    account_id: str | None = None,
) -> IssuedNetwork:
    network = Network(
        id=ids.new_id(NETWORK_ID_PREFIX),
        name=name,
        livemode=livemode,
        created_at=clock.now(),
        account_id=account_id,
    )
    secret = new_secret()
    async with uow(write=True) as tx:
        await tx.networks.insert(network, box.seal(secret))
    return IssuedNetwork(network, secret)


async def rotate(
    uow: UnitOfWorkFactory, clock: Clock, box: SecretBox, network_id: str, grace: int
) -> IssuedNetwork:
    """A new secret for the network; the one before it stays valid for ``grace`` seconds.

    The network deploys the new secret meanwhile (or signs with both: a header may carry several
    signatures). ``grace`` 0 retires the old secret at once, as after a leak.
    """
    if grace < 0:
        raise ValueError("a grace period cannot be negative")
    secret = new_secret()
    async with uow(write=True) as tx:
        rotated = await tx.networks.rotate(network_id, box.seal(secret), clock.now() + grace)
    if rotated is None:
        raise ResourceNotFoundError.entity("Network", network_id)
    return IssuedNetwork(rotated.network, secret)


async def revoke(uow: UnitOfWorkFactory, clock: Clock, network_id: str) -> Network:
    """Refuse the network's calls from now on (within CACHE_SECONDS in other processes)."""
    async with uow(write=True) as tx:
        await tx.networks.revoke(network_id, clock.now())
        found = await tx.networks.get(network_id)
    if found is None or found.network.account_id is not None:
        raise ResourceNotFoundError.entity("Network", network_id)
    return found.network


async def list_networks(uow: UnitOfWorkFactory) -> list[Network]:
    """Every store network issued with ``caja networks create``, revoked ones included."""
    async with uow() as tx:
        return await tx.networks.all()


async def sandbox_for(uow: UnitOfWorkFactory, clock: Clock, box: SecretBox, tenant: Tenant) -> IssuedNetwork:
    """The account's own test network (cashier simulator, POST /payment_test), made on first use."""
    if tenant.livemode:
        raise ForbiddenError.test_key_required()
    for attempt in range(2):
        # After losing the race to make it, read as a writer: on SQLite the winner's row may sit in
        # a group commit that has not committed yet, which a reader does not see and a write unit
        # does (returning once it is durable). Concurrent first calls of an account answered 500.
        async with uow(write=attempt > 0) as tx:
            found = await tx.networks.of_account(tenant.account_id)
        if found is not None:
            return IssuedNetwork(found.network, box.open(found.secret))
        try:
            return await create(
                uow,
                clock,
                box,
                SANDBOX_NETWORK_NAME,
                livemode=False,
                account_id=tenant.account_id,
            )
        except Exception:  # noqa: S112 (another request made it first: the unique account_id)
            continue
    raise InternalError.general()


def _unauthorized(why: str) -> AuthenticationError:
    return AuthenticationError.with_detail(
        code="caja.errors.network.authentication",
        message_es="Acceso no autorizado.",
        message_en="Unauthorized access.",
        debug_message=f"Network request refused: {why}.",
    )


@dataclass(frozen=True, slots=True)
class _Known:
    network: Network
    secrets: tuple[str, ...]  # the current one first; during a rotation's grace, the one before
    read_at: int
    reread_at: int | None = None  # when a signature that matched no secret made it read again


class NetworkAuthenticator:
    """Checks a request's HMAC signature; secrets are opened once per process and kept in memory."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, box: SecretBox) -> None:
        self._uow = uow
        self._clock = clock
        self._box = box
        # Re-read after CACHE_SECONDS, so a revocation made by another process bites within that
        # time (at once in the revoking process); a signature that matches none of the known
        # secrets re-reads sooner (below), so a rotation's new secret works at once everywhere.
        self._known: dict[str, _Known] = {}

    async def _load(self, network_id: str, reread: bool = False) -> _Known | None:
        now = self._clock.now()
        known = self._known.get(network_id)
        if known is not None and not reread and now - known.read_at < CACHE_SECONDS:
            return known
        async with self._uow() as tx:
            found = await tx.networks.get(network_id)
        if found is None:
            return None
        network = found.network
        secrets = [self._box.open(found.secret)]
        if found.previous_secret is not None and now < (network.previous_secret_expires_at or 0):
            secrets.append(self._box.open(found.previous_secret))
        known = _Known(network, tuple(secrets), now, now if reread else None)
        if network.revoked_at is None:
            self._known[network_id] = known
        return known

    def forget(self, network_id: str) -> None:
        self._known.pop(network_id, None)

    async def authenticate(
        self,
        network_id: str | None,
        timestamp: str | None,
        signature: str | None,
        method: str,
        path: str,
        body: bytes,
    ) -> Network:
        if not network_id or not timestamp or not signature:
            raise _unauthorized("X-Caja-Network, X-Caja-Timestamp and X-Caja-Signature are required")
        if len(network_id) > 64:
            raise _unauthorized("unknown network")
        known = await self._load(network_id)
        if known is None:
            raise _unauthorized("unknown network")
        why = self._verify(known, timestamp, signature, method, path, body)
        if why == MISMATCH and (known.reread_at is None or self._clock.now() - known.reread_at >= 1):
            # Perhaps rotated by another process since this one read it: read it again, at most
            # once a second per network, so that a flood of bad signatures costs few reads.
            reread = await self._load(network_id, reread=True)
            if reread is None:
                raise _unauthorized("unknown network")
            known = reread
            why = self._verify(known, timestamp, signature, method, path, body)
        if known.network.revoked_at is not None:
            raise _unauthorized("the network's credentials were revoked")
        if why is not None:
            raise _unauthorized(why)
        return known.network

    def _verify(
        self, known: _Known, timestamp: str, signature: str, method: str, path: str, body: bytes
    ) -> str | None:
        now = self._clock.now()
        expires = known.network.previous_secret_expires_at or 0
        why: str | None = MISMATCH
        for index, secret in enumerate(known.secrets):
            if index > 0 and now >= expires:
                break  # the grace period ended while the secrets were cached
            why = verify(secret, timestamp, signature, method, path, body, now)
            if why is None or why != MISMATCH:
                return why
        return why
