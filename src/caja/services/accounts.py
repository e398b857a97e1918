"""Merchant accounts, their API keys, and turning a presented key into a tenant."""

from __future__ import annotations

import time
from dataclasses import dataclass

from caja.domain import ids
from caja.domain.clock import Clock
from caja.domain.errors import AuthenticationError, ParameterValidationError
from caja.domain.tenancy import Tenant
from caja.store.accounts import Account
from caja.store.uow import UnitOfWorkFactory

MIN_CUSTOM_KEY_LENGTH = 12


@dataclass(frozen=True, slots=True)
class IssuedAccount:
    account: Account
    test_private_key: str
    live_private_key: str


def _hint(key: str) -> str:
    return key[:8]


async def create_account(uow: UnitOfWorkFactory, clock: Clock, name: str) -> IssuedAccount:
    name = name.strip()
    if not name:
        raise ParameterValidationError.missing("name")
    now = clock.now()
    account = Account(id=ids.new_id(ids.ACCOUNT), name=name[:200], is_sandbox=False, created_at=now)
    test_key, live_key = ids.new_api_key(), ids.new_api_key()
    async with uow(write=True) as tx:
        await tx.accounts.insert(account)
        await tx.accounts.add_key(
            account.id, livemode=False, key_hash=ids.hash_api_key(test_key), hint=_hint(test_key), now=now
        )
        await tx.accounts.add_key(
            account.id, livemode=True, key_hash=ids.hash_api_key(live_key), hint=_hint(live_key), now=now
        )
    return IssuedAccount(account, test_key, live_key)


@dataclass(frozen=True, slots=True)
class SandboxAccess:
    account: Account
    # The test key, when it was issued or fixed by this call; None when an earlier start issued it.
    test_private_key: str | None
    created: bool


def check_custom_key(key: str) -> None:
    if (
        not key.startswith(ids.KEY)
        or len(key) < MIN_CUSTOM_KEY_LENGTH
        or not key.isascii()
        or not key.isprintable()
    ):
        raise ValueError(
            f"an API key must start with {ids.KEY!r} and have at least "
            f"{MIN_CUSTOM_KEY_LENGTH} printable characters"
        )


async def ensure_sandbox(uow: UnitOfWorkFactory, clock: Clock, fixed_key: str | None = None) -> SandboxAccess:
    """Make sure a sandbox account exists; with ``fixed_key``, make that key one of its test keys."""
    if fixed_key is not None:
        check_custom_key(fixed_key)
    now = clock.now()
    async with uow(write=True) as tx:
        account = await tx.accounts.sandbox()
        created = account is None
        if account is None:
            account = Account(id=ids.new_id(ids.ACCOUNT), name="Sandbox", is_sandbox=True, created_at=now)
            await tx.accounts.insert(account)
        issued: str | None = None
        if fixed_key is not None:
            key_hash = ids.hash_api_key(fixed_key)
            if not await tx.accounts.has_key(key_hash):
                await tx.accounts.add_key(
                    account.id, livemode=False, key_hash=key_hash, hint=_hint(fixed_key), now=now
                )
            issued = fixed_key
        elif created:
            issued = ids.new_api_key()
            await tx.accounts.add_key(
                account.id, livemode=False, key_hash=ids.hash_api_key(issued), hint=_hint(issued), now=now
            )
            live = ids.new_api_key()
            await tx.accounts.add_key(
                account.id, livemode=True, key_hash=ids.hash_api_key(live), hint=_hint(live), now=now
            )
    return SandboxAccess(account=account, test_private_key=issued, created=created)


async def roll_key(uow: UnitOfWorkFactory, clock: Clock, account_id: str, *, livemode: bool) -> str:
    """Revoke the account's keys of one mode and issue a fresh one."""
    now = clock.now()
    key = ids.new_api_key()
    async with uow(write=True) as tx:
        if await tx.accounts.get(account_id) is None:
            raise ValueError(f"no account {account_id!r}")
        await tx.accounts.revoke_keys(account_id, livemode=livemode, now=now)
        await tx.accounts.add_key(
            account_id, livemode=livemode, key_hash=ids.hash_api_key(key), hint=_hint(key), now=now
        )
    return key


class KeyResolver:
    """Turns a presented private key into its tenant, remembering answers for a few seconds.

    The cache is keyed by the key's hash, never the key, and a revoked key stops working once its
    entry expires (``ttl_seconds``): the price of not reading the database on every request.
    """

    def __init__(self, uow: UnitOfWorkFactory, ttl_seconds: float = 5.0, max_entries: int = 10_000) -> None:
        self._uow = uow
        self._ttl = ttl_seconds
        self._max = max_entries
        self._cache: dict[str, tuple[float, Tenant | None]] = {}

    async def tenant(self, key: str) -> Tenant:
        key_hash = ids.hash_api_key(key)
        # Cache freshness is about elapsed time, not business time, so it ignores the Clock.
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            tenant = cached[1]
        else:
            async with self._uow() as tx:
                tenant = await tx.accounts.tenant_for_key(key_hash)
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[key_hash] = (now + self._ttl, tenant)
        if tenant is None:
            raise AuthenticationError.invalid_key()
        return tenant

    def forget(self) -> None:
        self._cache.clear()
