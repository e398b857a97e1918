"""Identifiers and secrets, drawn from the operating system's cryptographic random source.

Conekta ids look like ``cus_2xHJayvPVd3BpmdC7``: a prefix, then 17 base58 characters starting
with ``2``. Caja keeps that look; 16 random base58 characters carry about 93 bits of entropy.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

CUSTOMER = "cus_"
PAYMENT_SOURCE = "off_ref_"
ORDER = "ord_"
ACCOUNT = "acc_"
PAYOUT = "payout_"
KEY = "key_"


def _base58(length: int) -> str:
    # Bytes below 232 (= 4 x 58) map uniformly onto the alphabet; the rest are dropped
    # (rejection sampling), so one read of the random source nearly always suffices.
    chars: list[str] = []
    while len(chars) < length:
        chars.extend(_BASE58[b % 58] for b in secrets.token_bytes(length + 8) if b < 232)
    return "".join(chars[:length])


def new_id(prefix: str) -> str:
    return f"{prefix}2{_base58(16)}"


def new_hex_id() -> str:
    """24 hexadecimal characters, the shape of Conekta's charge, event and webhook ids."""
    return secrets.token_hex(12)


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_log_id() -> str:
    return secrets.token_hex(12)


def new_api_key() -> str:
    """A private API key: ``key_`` and 32 base58 characters (about 187 bits)."""
    return f"{KEY}{_base58(32)}"


def hash_api_key(key: str) -> str:
    """Keys are high-entropy random strings, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
