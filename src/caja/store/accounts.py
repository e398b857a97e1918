"""Merchant accounts and their hashed API keys."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from caja.domain.tenancy import Tenant
from caja.store.connection import Conn
from caja.store.prepared import Prepared
from caja.store.tables import accounts, api_keys


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    is_sandbox: bool
    created_at: int


_TENANT_FOR_KEY = sa.select(api_keys.c.account_id, api_keys.c.livemode).where(
    api_keys.c.key_hash == sa.bindparam("key_hash"), api_keys.c.revoked_at.is_(None)
)


# Every store payment names its merchant in the payer's receipt.
_GET = Prepared(sa.select(accounts).where(accounts.c.id == sa.bindparam("id")))


class AccountRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def insert(self, account: Account) -> None:
        await self._conn.execute(
            accounts.insert().values(
                id=account.id, name=account.name, is_sandbox=account.is_sandbox, created_at=account.created_at
            )
        )

    async def get(self, account_id: str) -> Account | None:
        row = (await self._conn.run(_GET, {"id": account_id})).first()
        return _account(row) if row else None

    async def sandbox(self) -> Account | None:
        query = sa.select(accounts).where(accounts.c.is_sandbox.is_(True)).order_by(accounts.c.seq).limit(1)
        row = (await self._conn.execute(query)).first()
        return _account(row) if row else None

    async def add_key(self, account_id: str, *, livemode: bool, key_hash: str, hint: str, now: int) -> None:
        await self._conn.execute(
            api_keys.insert().values(
                key_hash=key_hash, account_id=account_id, livemode=livemode, hint=hint, created_at=now
            )
        )

    async def has_key(self, key_hash: str) -> bool:
        found = await self._conn.scalar(
            sa.select(api_keys.c.account_id).where(api_keys.c.key_hash == key_hash)
        )
        return found is not None

    async def revoke_keys(self, account_id: str, *, livemode: bool, now: int) -> None:
        await self._conn.execute(
            api_keys.update()
            .where(
                api_keys.c.account_id == account_id,
                api_keys.c.livemode.is_(livemode),
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )

    async def tenant_for_key(self, key_hash: str) -> Tenant | None:
        row = (await self._conn.execute(_TENANT_FOR_KEY, {"key_hash": key_hash})).first()
        return Tenant(account_id=row.account_id, livemode=bool(row.livemode)) if row else None


def _account(row: sa.Row[tuple[int, str, str, bool, int]]) -> Account:
    return Account(id=row.id, name=row.name, is_sandbox=bool(row.is_sandbox), created_at=row.created_at)
