"""Recurrent cash references: 20 digits, Conekta's prefix, a Luhn check digit, no collisions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from caja.domain.references import (
    RECURRENT_CASH_LENGTH,
    RECURRENT_CASH_PREFIX,
    is_luhn_valid,
    is_recurrent_cash_reference,
    luhn_check_digit,
    new_recurrent_cash_reference,
)

digits = st.text(alphabet="0123456789", min_size=1, max_size=40)


def luhn_sum_ok(number: str) -> bool:
    """An independent, textbook Luhn test (double every second digit from the right)."""
    total = 0
    for position, char in enumerate(reversed(number)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def test_published_conekta_references_pass_luhn() -> None:
    assert is_luhn_valid("10001432529593700513")  # seed: recurrent cash reference
    assert is_luhn_valid("1025292250000330")  # seed: cash withdrawal reference


@given(digits)
def test_check_digit_makes_any_payload_valid(payload: str) -> None:
    number = payload + luhn_check_digit(payload)
    assert luhn_sum_ok(number)
    assert is_luhn_valid(number)


@given(digits, st.integers(min_value=0, max_value=39), st.integers(min_value=1, max_value=9))
def test_a_single_mistyped_digit_is_caught(payload: str, where: int, delta: int) -> None:
    number = payload + luhn_check_digit(payload)
    index = where % len(number)
    wrong = str((int(number[index]) + delta) % 10)
    mistyped = number[:index] + wrong + number[index + 1 :]
    assert not is_luhn_valid(mistyped)


def test_rejects_non_digits() -> None:
    assert not is_luhn_valid("1000143252959370051a")
    assert not is_luhn_valid("")
    assert not is_luhn_valid("١٢٣٤")  # Arabic-Indic digits are digits to str.isdigit, not to us


def test_generated_references_have_the_documented_shape() -> None:
    for _ in range(1_000):
        reference = new_recurrent_cash_reference()
        assert len(reference) == RECURRENT_CASH_LENGTH
        assert reference.startswith(RECURRENT_CASH_PREFIX)
        assert reference.isdigit()
        assert luhn_sum_ok(reference)
        assert is_recurrent_cash_reference(reference)


def test_no_collisions_in_100000_draws() -> None:
    draws = [new_recurrent_cash_reference() for _ in range(100_000)]
    assert len(set(draws)) == len(draws)
    assert all(luhn_sum_ok(r) for r in draws)
