"""The payment slip of a recurrent cash reference, looked up by its payment source's id.

Payers open the slip without credentials: the source id in its URL (93 random bits) is the only
secret, so a lookup spans every account and mode and reveals nothing but the slip itself.
"""

from __future__ import annotations

from caja.domain.payment_sources import PaymentSourceType
from caja.domain.slips import Slip
from caja.store.uow import UnitOfWorkFactory


async def find(uow: UnitOfWorkFactory, source_id: str) -> Slip | None:
    """The slip of an active ``cash_recurrent`` source, or ``None`` (unknown, deleted or SPEI)."""
    async with uow() as tx:
        source = await tx.payment_sources.find_active(source_id)
        if source is None or source.type is not PaymentSourceType.CASH_RECURRENT:
            return None
        account = await tx.accounts.get(source.account_id)
    if account is None:
        return None
    return Slip(
        source_id=source.id,
        reference=source.reference,
        merchant_name=account.name,
        expires_at=source.expires_at,
        livemode=source.livemode,
    )
