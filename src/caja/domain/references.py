"""Cash payment references: numeric, reusable, with a Luhn ("algoritmo base 10") check digit.

A recurrent cash reference has 20 digits, like Conekta's ``10001432529593700513``:

    ``1000`` (the recurrent cash prefix) + 15 random digits + 1 Luhn check digit.

The Luhn check lets a cashier's terminal reject a mistyped reference before it ever reaches Caja,
which is why Mexican banks and store networks use it for payment references. Uniqueness is not
the generator's job: the database's unique index is, and the caller draws again on a collision.
"""

from __future__ import annotations

import secrets

RECURRENT_CASH_PREFIX = "1000"
RECURRENT_CASH_LENGTH = 20


def luhn_check_digit(payload: str) -> str:
    """The digit that, appended to ``payload``, makes the whole number pass the Luhn test."""
    total = 0
    # Walking from the right, the digit next to the (future) check digit is doubled first.
    for index, char in enumerate(reversed(payload)):
        digit = ord(char) - 48
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_luhn_valid(number: str) -> bool:
    if not number.isascii() or not number.isdigit() or len(number) < 2:
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def random_digits(count: int) -> str:
    """``count`` uniformly random decimal digits, leading zeros included."""
    return f"{secrets.randbelow(10**count):0{count}d}"


def new_recurrent_cash_reference() -> str:
    body_length = RECURRENT_CASH_LENGTH - len(RECURRENT_CASH_PREFIX) - 1
    payload = RECURRENT_CASH_PREFIX + random_digits(body_length)
    return payload + luhn_check_digit(payload)


def is_recurrent_cash_reference(value: str) -> bool:
    return (
        len(value) == RECURRENT_CASH_LENGTH
        and value.startswith(RECURRENT_CASH_PREFIX)
        and is_luhn_valid(value)
    )
