"""Limits that keep one request from hurting the server: body size, metadata size, stray paths."""

from __future__ import annotations

import httpx

from tests.checks import assert_error_envelope


def test_an_oversized_body_gets_a_conekta_413_and_writes_nothing(http: httpx.Client) -> None:
    before = http.get("/customers", params={"search": "gigante"}).json()["data"]
    answer = http.post(
        "/customers",
        content=b'{"name": "gigante", "email": "g@example.com", "custom_reference": "'
        + b"x" * 2_000_000
        + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/vnd.conekta-v2.3.0+json")
    body = answer.json()
    assert_error_envelope(body)
    assert body["details"][0]["code"] == "conekta.errors.request.payload_too_large"
    assert http.get("/customers", params={"search": "gigante"}).json()["data"] == before


def test_metadata_is_limited_in_size(http: httpx.Client) -> None:
    answer = http.post(
        "/customers", json={"name": "Meta", "email": "m@example.com", "metadata": {"notes": "x" * 40_000}}
    )
    assert answer.status_code == 422
    assert answer.json()["details"][0]["param"] == "metadata"
    fits = http.post(
        "/customers", json={"name": "Meta", "email": "m@example.com", "metadata": {"notes": "x" * 1000}}
    )
    assert fits.status_code == 200 and fits.json()["metadata"]["notes"] == "x" * 1000


def test_a_trailing_slash_is_a_conekta_404_not_a_redirect(http: httpx.Client) -> None:
    answer = http.post("/customers/", json={"name": "S", "email": "s@example.com"})
    assert answer.status_code == 404
    assert answer.json()["details"][0]["code"] == "conekta.errors.resource_not_found.route"
