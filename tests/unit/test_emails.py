"""E-mail syntax: the addresses payers really have pass, malformed ones fail with a reason."""

from __future__ import annotations

import pytest

from caja.domain.emails import normalise_email


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("fulanito@example.com", "fulanito@example.com"),
        ("Juan.Perez+pagos@Correo.Example.MX", "Juan.Perez+pagos@correo.example.mx"),
        ("  user_1@sub-domain.example.org ", "user_1@sub-domain.example.org"),
        ("o'brien@example.co", "o'brien@example.co"),
    ],
)
def test_valid_addresses_are_kept_with_a_lower_case_domain(given: str, stored: str) -> None:
    assert normalise_email(given) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plainaddress",
        "@example.com",
        "user@",
        "user@localhost",
        "user@example",
        "user@example.c0m",
        "user@-example.com",
        "user@example-.com",
        "user..name@example.com",
        ".user@example.com",
        "user.@example.com",
        "us er@example.com",
        "user@exa mple.com",
        "usuario@ejemplo.com\nBcc: otro@ejemplo.com",
        "ñandú@example.com",
        "a" * 65 + "@example.com",
        "user@" + "a" * 250 + ".com",
    ],
)
def test_malformed_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalise_email(bad)
