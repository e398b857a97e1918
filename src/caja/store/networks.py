"""Store network rows: who may call the network API, with their sealed HMAC secret."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from caja.domain.networks import Network
from caja.store.connection import Conn
from caja.store.prepared import Prepared
from caja.store.tables import networks

_COLUMNS = [c.key for c in networks.columns if c.key != "seq"]
_INSERT = Prepared(networks.insert(), keys=_COLUMNS)
_GET = Prepared(sa.select(networks).where(networks.c.id == sa.bindparam("id")))
_OF_ACCOUNT = Prepared(sa.select(networks).where(networks.c.account_id == sa.bindparam("account_id")))


class NetworkRepository:
    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def insert(self, network: Network, sealed_secret: str) -> None:
        await self._conn.run(
            _INSERT,
            {
                "id": network.id,
                "name": network.name,
                "livemode": network.livemode,
                "account_id": network.account_id,
                "secret": sealed_secret,
                "created_at": network.created_at,
                "revoked_at": network.revoked_at,
            },
        )

    async def get(self, network_id: str) -> tuple[Network, str] | None:
        """The network and its sealed secret, revoked or not (the caller decides)."""
        row = (await self._conn.run(_GET, {"id": network_id})).first()
        return (to_network(row), row.secret) if row else None

    async def of_account(self, account_id: str) -> tuple[Network, str] | None:
        row = (await self._conn.run(_OF_ACCOUNT, {"account_id": account_id})).first()
        return (to_network(row), row.secret) if row else None

    async def all(self) -> list[Network]:
        rows = (await self._conn.execute(sa.select(networks).order_by(networks.c.seq))).all()
        return [to_network(r) for r in rows]

    async def revoke(self, network_id: str, now: int) -> bool:
        result = await self._conn.execute(
            networks.update()
            .where(networks.c.id == network_id, networks.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)


def to_network(row: Any) -> Network:
    return Network(
        id=row.id,
        name=row.name,
        livemode=bool(row.livemode),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        account_id=row.account_id,
    )
