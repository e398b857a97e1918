"""Store network rows: who may call the network API, with their sealed HMAC secret."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class SealedNetwork:
    """A network with its secrets, still sealed: the current one, and during a rotation's grace
    period the one before it (valid until ``network.previous_secret_expires_at``)."""

    network: Network
    secret: str
    previous_secret: str | None = None


def _sealed(row: Any) -> SealedNetwork:
    return SealedNetwork(to_network(row), row.secret, row.previous_secret)


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
                "previous_secret": None,
                "previous_secret_expires_at": None,
            },
        )

    async def get(self, network_id: str) -> SealedNetwork | None:
        """The network and its sealed secrets, revoked or not (the caller decides)."""
        row = (await self._conn.run(_GET, {"id": network_id})).first()
        return _sealed(row) if row else None

    async def of_account(self, account_id: str) -> SealedNetwork | None:
        row = (await self._conn.run(_OF_ACCOUNT, {"account_id": account_id})).first()
        return _sealed(row) if row else None

    async def all(self) -> list[Network]:
        """Every network but the accounts' own sandbox ones, oldest first."""
        query = sa.select(networks).where(networks.c.account_id.is_(None)).order_by(networks.c.seq)
        return [to_network(r) for r in (await self._conn.execute(query)).all()]

    async def rotate(self, network_id: str, sealed_secret: str, previous_until: int) -> SealedNetwork | None:
        """Make ``sealed_secret`` current and keep the one before it until ``previous_until``.

        A second rotation within the grace period drops the oldest secret: at most two are valid.
        None for an unknown or revoked network, or an account's sandbox network (Caja's own).
        """
        found = await self.get(network_id)
        if found is None or found.network.revoked_at is not None or found.network.account_id is not None:
            return None
        await self._conn.execute(
            networks.update()
            .where(networks.c.id == network_id)
            .values(
                secret=sealed_secret,
                previous_secret=found.secret,
                previous_secret_expires_at=previous_until,
            )
        )
        return await self.get(network_id)

    async def revoke(self, network_id: str, now: int) -> bool:
        result = await self._conn.execute(
            networks.update()
            .where(
                networks.c.id == network_id,
                networks.c.revoked_at.is_(None),
                networks.c.account_id.is_(None),  # an account's sandbox network is Caja's own
            )
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
        previous_secret_expires_at=row.previous_secret_expires_at,
    )
