"""Events: the record of each state change, delivered to merchants by webhooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caja.domain.ids import new_hex_id
from caja.domain.tenancy import Tenant


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    tenant: Tenant
    type: str
    object: dict[str, Any]
    created_at: int
    previous_attributes: dict[str, Any] = field(default_factory=dict)


def new_event(
    tenant: Tenant,
    type: str,
    obj: dict[str, Any],
    now: int,
    previous_attributes: dict[str, Any] | None = None,
) -> Event:
    return Event(
        id=new_hex_id(),
        tenant=tenant,
        type=type,
        object=obj,
        created_at=now,
        previous_attributes=previous_attributes or {},
    )
