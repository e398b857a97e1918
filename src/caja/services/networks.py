"""Store networks: issuing their credentials and recognising their signed requests."""

from __future__ import annotations

from dataclasses import dataclass

from caja.delivery.keyring import SecretBox
from caja.domain import ids
from caja.domain.clock import Clock
from caja.domain.errors import AuthenticationError, ForbiddenError, InternalError
from caja.domain.networks import NETWORK_ID_PREFIX, Network, new_secret, verify
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


async def sandbox_for(uow: UnitOfWorkFactory, clock: Clock, box: SecretBox, tenant: Tenant) -> IssuedNetwork:
    """The account's own test network (cashier simulator, POST /payment_test), made on first use."""
    if tenant.livemode:
        raise ForbiddenError.test_key_required()
    for _ in range(2):
        async with uow() as tx:
            found = await tx.networks.of_account(tenant.account_id)
        if found is not None:
            return IssuedNetwork(found[0], box.open(found[1]))
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


class NetworkAuthenticator:
    """Checks a request's HMAC signature; secrets are opened once per process and kept in memory."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, box: SecretBox) -> None:
        self._uow = uow
        self._clock = clock
        self._box = box
        # network id -> (network, secret, read at): re-read after CACHE_SECONDS, so a revocation
        # made by another process bites within that time (at once in the revoking process).
        self._known: dict[str, tuple[Network, str, int]] = {}

    async def _load(self, network_id: str) -> tuple[Network, str] | None:
        now = self._clock.now()
        known = self._known.get(network_id)
        if known is not None and now - known[2] < CACHE_SECONDS:
            return known[0], known[1]
        async with self._uow() as tx:
            found = await tx.networks.get(network_id)
        if found is None:
            return None
        network, sealed = found
        secret = self._box.open(sealed)
        if network.revoked_at is None:
            self._known[network_id] = (network, secret, now)
        return network, secret

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
        loaded = await self._load(network_id)
        if loaded is None:
            raise _unauthorized("unknown network")
        network, secret = loaded
        if network.revoked_at is not None:
            raise _unauthorized("the network's credentials were revoked")
        why = verify(secret, timestamp, signature, method, path, body, self._clock.now())
        if why is not None:
            raise _unauthorized(why)
        return network
