"""CLABEs (Clave Bancaria Estandarizada) for reusable SPEI payment sources.

Caja issues CLABEs the way an STP-style receiving participant does: bank ``646`` (STP), plaza
``180``, an 11-digit account number and the control digit defined by Banxico, computed by the
``clabe`` package rather than by hand.
"""

from __future__ import annotations

import clabe as clabe_lib

from caja.domain.references import random_digits

STP_BANK_CODE = "646"
STP_PLAZA = "180"
BANK_NAME = "STP"
CLABE_LENGTH = 18


def control_digit(first_seventeen: str) -> str:
    return str(clabe_lib.compute_control_digit(first_seventeen))


def new_stp_clabe() -> str:
    first_seventeen = STP_BANK_CODE + STP_PLAZA + random_digits(11)
    return first_seventeen + control_digit(first_seventeen)


def is_valid_clabe(value: str) -> bool:
    if len(value) != CLABE_LENGTH or not value.isascii() or not value.isdigit():
        return False
    return control_digit(value[:17]) == value[17]
