"""Identifiers and secrets, drawn from the operating system's cryptographic random source.

Conekta ids look like ``cus_2xHJayvPVd3BpmdC7``: a prefix, then 17 base58 characters starting
with ``2``. Caja keeps that look. An id that is also a capability (a payment source's, which
opens its public payment slip) is 16 random base58 characters, about 93 bits of entropy.

Other ids are **time-ordered** (``new_ordered_id``, ``new_hex_id``): their first characters are
the time they were made, the rest random. Each table's unique index on ``id`` then takes new
ids near its end, on pages already in the cache and touched by the previous commit, instead of
on a random page of the whole index: on SQLite a paid payment writes four events, and random
ids put them on four pages of that index, each one more page in the commit's WAL frames and in
the next checkpoint, and with a large table a page to read first. The 24-hex ids keep Conekta's
own layout for them, which is MongoDB's ObjectId: four bytes of seconds since 1970 first.
"""

from __future__ import annotations

import hashlib
import secrets
import time
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
    """An id that says nothing of when it was made: 16 random base58 characters after the ``2``."""
    return f"{prefix}2{_base58(16)}"


# Milliseconds since 2020-01-01 in seven base58 characters last until 2089.
_ORDERED_EPOCH_MS = 1_577_836_800_000
_ORDERED_TIME_CHARS = 7


def _base58_fixed(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 58)
        chars.append(_BASE58[digit])
    return "".join(reversed(chars))


def new_ordered_id(prefix: str) -> str:
    """An id whose first characters after the ``2`` are its millisecond, then 9 random ones.

    The alphabet is in ASCII order, so ids made later sort after (to the millisecond); the 9
    random characters (about 53 bits) keep ids made in the same millisecond apart. Not for ids
    that grant anything: they tell when they were made.
    """
    millis = time.time_ns() // 1_000_000 - _ORDERED_EPOCH_MS
    return f"{prefix}2{_base58_fixed(millis, _ORDERED_TIME_CHARS)}{_base58(9)}"


def new_hex_id() -> str:
    """24 hexadecimal characters, the shape of Conekta's charge, event and webhook ids.

    As Conekta's (MongoDB ObjectIds): four bytes of seconds since 1970 first; then two bytes of
    the millisecond within that second, so ids sort by creation to the millisecond, and six
    random bytes (48 bits) that keep ids of the same millisecond apart.
    """
    seconds, millis = divmod(time.time_ns() // 1_000_000, 1000)
    return f"{seconds & 0xFFFFFFFF:08x}{millis:04x}{secrets.token_hex(6)}"


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
