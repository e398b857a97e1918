"""Recurrent SPEI CLABEs: bank 646 (STP), plaza 180, valid control digit, no collisions."""

from __future__ import annotations

import itertools
import secrets

import clabe
from hypothesis import given, settings
from hypothesis import strategies as st

from caja.domain.clabe import is_valid_clabe, stp_clabe
from caja.domain.permutation import permute

WEIGHTS = (3, 7, 1) * 6


def banxico_control_digit(first_seventeen: str) -> int:
    """Banxico's published algorithm, written out independently of Caja and of the clabe package."""
    total = sum((int(d) * w) % 10 for d, w in zip(first_seventeen, WEIGHTS, strict=False))
    return (10 - total % 10) % 10


def test_seed_clabes_are_valid() -> None:
    assert is_valid_clabe("646180111802075448")
    assert banxico_control_digit("64618011180207544") == 8


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=16, max_size=32), st.integers(min_value=2, max_value=4))
def test_permutation_is_a_bijection_on_small_domains(key: bytes, digits: int) -> None:
    images = [permute(n, key, digits) for n in range(10**digits)]
    assert sorted(images) == list(range(10**digits))


def test_permutation_depends_on_the_key() -> None:
    first = [permute(n, b"a" * 32, 11) for n in range(50)]
    second = [permute(n, b"b" * 32, 11) for n in range(50)]
    assert first != second
    # Consecutive serials must not give consecutive accounts (the counter stays hidden).
    assert sum(1 for x, y in itertools.pairwise(first) if abs(x - y) < 1000) < 3


@given(st.integers(min_value=0, max_value=10**11 - 1), st.binary(min_size=32, max_size=32))
def test_any_serial_gives_a_valid_stp_clabe(serial: int, key: bytes) -> None:
    value = stp_clabe(serial, key)
    assert len(value) == 18 and value.isdigit()
    assert value.startswith("646180")
    assert int(value[17]) == banxico_control_digit(value[:17])
    assert clabe.validate_clabe(value)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17), st.integers(min_value=1, max_value=9))
def test_a_wrong_control_digit_is_rejected(first_seventeen: str, delta: int) -> None:
    good = first_seventeen + str(banxico_control_digit(first_seventeen))
    bad = first_seventeen + str((int(good[17]) + delta) % 10)
    assert is_valid_clabe(good)
    assert not is_valid_clabe(bad)


def test_shape_is_checked() -> None:
    assert not is_valid_clabe("64618011180207544")
    assert not is_valid_clabe("6461801118020754480")
    assert not is_valid_clabe("64618011180207544x")


def test_no_collisions_in_100000_draws() -> None:
    key = secrets.token_bytes(32)
    start = secrets.randbelow(10**11 - 100_000)
    draws = [stp_clabe(serial, key) for serial in range(start, start + 100_000)]
    assert len(set(draws)) == len(draws)
    assert all(int(d[17]) == banxico_control_digit(d[:17]) for d in draws)
