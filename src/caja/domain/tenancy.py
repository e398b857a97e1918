"""Who is asking: every object belongs to one account and one mode (test or live)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tenant:
    account_id: str
    livemode: bool
