"""Independent checks shared by the SDK and HTTP suites (never imported from ``caja``)."""

from __future__ import annotations

import io
import json
from typing import Any

import conekta
import httpx
from PIL import Image

DAY = 86_400

# The convenience-store networks in Conekta's own recurrent-cash response (seed page 000,
# "Cargo recurrente", response of POST /customers), in that order.
CONEKTA_STORE_NAMES = [
    "7 Eleven",
    "Farmacias del Ahorro",
    "CIRCLE K",
    "Tiendas Extra",
    "Farmacia Benavides",
    "Soriana",
    "WALDO'S",
    "ELECZION",
    "Super Kiosko",
    "Farmacias Bazar",
    "Wolworth",
    "Del Sol",
    "Yepas",
    "Farmacias De Dios",
    "Farmacias Nosarco",
    "Farmacias Santa Cruz",
    "Farmacentro",
    "Farmacias GyM",
    "Farmacias San Francisco de Asis",
    "Farmacias Union",
    "Farmacias Zapotlan",
    "Farmatodo",
    "Al Super",
    "BBVA ATM",
]


def luhn_valid(number: str) -> bool:
    """The Luhn ("base 10") test, written out from its definition."""
    if not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def error_of(exc: conekta.ApiException) -> dict[str, Any]:
    """The Conekta error object an SDK exception carries, checked for its envelope."""
    assert exc.body, f"no body on {exc!r}"
    body = json.loads(exc.body)
    assert_error_envelope(body)
    return body


def assert_error_envelope(body: dict[str, Any]) -> None:
    assert body["object"] == "error"
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["log_id"], str) and body["log_id"]
    assert isinstance(body["details"], list) and body["details"]
    for detail in body["details"]:
        assert {"code", "param", "message", "debug_message"} <= detail.keys()
        assert detail["code"].startswith("conekta.errors.")
        assert detail["message"] and detail["debug_message"]


def params_of(body: dict[str, Any]) -> list[str | None]:
    return [d["param"] for d in body["details"]]


def codes_of(body: dict[str, Any]) -> list[str]:
    return [d["code"] for d in body["details"]]


def assert_png_barcode(url: str) -> None:
    response = httpx.get(url, timeout=10.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.verify()
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    width, height = image.size
    # A linear (Code 128) barcode is wider than it is tall.
    assert width > height > 0
