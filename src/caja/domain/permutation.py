"""A keyed permutation of ``range(10**digits)``: unique by construction, unguessable without the key.

Used to turn a counter into account numbers: consecutive counter values give scattered,
never-repeating numbers. It is an alternating Feistel network over two decimal halves of
``u`` and ``v`` digits (the construction of NIST's FF1, with HMAC-SHA-256 as round function),
so it permutes exactly ``range(10**(u+v))`` with no cycle walking.
"""

from __future__ import annotations

import hashlib
import hmac

ROUNDS = 8  # even, so the halves end where they started


def _round(key: bytes, round_index: int, half: int) -> int:
    mac = hmac.new(key, f"{round_index}:{half}".encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big")


def permute(value: int, key: bytes, digits: int) -> int:
    if digits < 2:
        raise ValueError("a permutation needs at least two digits")
    if not 0 <= value < 10**digits:
        raise ValueError(f"{value} is outside range(10**{digits})")
    u = digits // 2
    v = digits - u
    moduli: tuple[int, int] = (10**u, 10**v)
    a, b = divmod(value, moduli[1])  # a has u digits, b has v digits
    for index in range(ROUNDS):
        a, b = b, (a + _round(key, index, b)) % moduli[index % 2]
    return a * moduli[1] + b
