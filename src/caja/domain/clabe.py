"""CLABEs (Clave Bancaria Estandarizada) for reusable SPEI payment sources.

Caja issues CLABEs the way an STP-style receiving participant does: bank ``646`` (STP), plaza
``180``, an 11-digit account number and the control digit defined by Banxico, computed by the
``clabe`` package rather than by hand.
"""

from __future__ import annotations

import clabe as clabe_lib

from caja.domain.permutation import permute

ACCOUNT_DIGITS = 11
STP_BANK_CODE = "646"
STP_PLAZA = "180"
BANK_NAME = "STP"
CLABE_LENGTH = 18


def control_digit(first_seventeen: str) -> str:
    return str(clabe_lib.compute_control_digit(first_seventeen))


def stp_clabe(serial: int, key: bytes) -> str:
    """The CLABE for the ``serial``-th issued account number.

    CLABEs come from a keyed permutation of a database counter rather than from random draws:
    11 digits leave only 10**11 accounts, where 100,000 random draws would collide about one time
    in twenty. The permutation never repeats and, without the key, does not reveal the counter.
    """
    account = permute(serial, key, ACCOUNT_DIGITS)
    first_seventeen = f"{STP_BANK_CODE}{STP_PLAZA}{account:0{ACCOUNT_DIGITS}d}"
    return first_seventeen + control_digit(first_seventeen)


def is_valid_clabe(value: str) -> bool:
    if len(value) != CLABE_LENGTH or not value.isascii() or not value.isdigit():
        return False
    return control_digit(value[:17]) == value[17]
