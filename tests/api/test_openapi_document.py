"""Caja's OpenAPI document tells the truth about errors, media types and authentication."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Server

ERROR_REF = {"$ref": "#/components/schemas/Error"}
CONEKTA_MEDIA = {f"application/vnd.conekta-v2.{minor}.0+json" for minor in range(4)}


@pytest.fixture
def document(server: Server) -> dict[str, Any]:
    answer = httpx.get(f"{server.base_url}/openapi.json", timeout=10.0)
    assert answer.status_code == 200
    parsed: dict[str, Any] = json.loads(answer.content)
    return parsed


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method]
    return found


def test_every_error_response_is_a_conekta_error_in_conekta_media_types(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's own, which Caja never sends
    assert schemas["Error"]["required"] == ["object", "type", "log_id", "details"]
    seen = 0
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    seen += 1
                    assert set(response["content"]) == CONEKTA_MEDIA, (method, path, status)
                    assert all(c["schema"] == ERROR_REF for c in response["content"].values())
            assert {"500", "503"} <= set(op["responses"]), (method, path)
    assert seen > 100


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("get", "/orders", {"401", "406", "422"}),
        ("get", "/orders/{id}", {"401", "404", "406"}),
        ("post", "/customers", {"400", "401", "406", "413", "422"}),
        ("post", "/payment_test", {"400", "401", "403", "404", "413", "422"}),
        ("post", "/network/v1/payments", {"400", "401", "404", "409", "413", "422"}),
        ("post", "/network/v1/reversals", {"401", "404", "422"}),
        ("get", "/_caja/emails", {"401", "403"}),
    ],
)
def test_each_operation_lists_the_errors_it_can_answer(
    document: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    assert statuses <= set(operation(document, method, path)["responses"])


def test_authentication_is_documented(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"]["scheme"] == "bearer"
    assert schemes["networkSignature"]["name"] == "x-caja-signature"
    assert operation(document, "get", "/customers")["security"] == [{"apiKey": []}, {"apiKeyBasic": []}]
    assert operation(document, "post", "/network/v1/lookups")["security"] == [{"networkSignature": []}]
    health = operation(document, "get", "/health")
    assert "security" not in health and "401" not in health["responses"]


def test_successes_are_documented_in_the_media_type_they_come_in(
    document: dict[str, Any], server: Server
) -> None:
    assert set(operation(document, "get", "/customers")["responses"]["200"]["content"]) == CONEKTA_MEDIA
    # The store network's answers are plain JSON, and so is the health check.
    assert set(operation(document, "post", "/network/v1/lookups")["responses"]["200"]["content"]) == {
        "application/json"
    }
    # Bytes that are not JSON are documented as what they are.
    raw = operation(document, "get", "/_caja/emails/{id}/raw")["responses"]["200"]["content"]
    assert set(raw) == {"message/rfc822"}
    barcode = operation(document, "get", "/barcodes/{reference}.png")["responses"]["200"]["content"]
    assert set(barcode) == {"image/png"}
    headers = {"Authorization": f"Bearer {server.api_key}", "Accept": "application/vnd.conekta-v2.1.0+json"}
    listed = httpx.get(f"{server.base_url}/customers", headers=headers, timeout=10.0)
    assert listed.headers["content-type"] == "application/vnd.conekta-v2.1.0+json"


def test_bodies_that_handlers_parse_themselves_are_documented(document: dict[str, Any]) -> None:
    for method, path in (
        ("post", "/_caja/emails"),
        ("post", "/payment_test"),
        ("post", "/network/v1/payments"),
        ("post", "/customers"),
    ):
        body = operation(document, method, path)["requestBody"]
        assert body["required"] is True
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"], (method, path)


def test_links_name_the_operations_an_answer_feeds(document: dict[str, Any]) -> None:
    created = operation(document, "post", "/customers")["responses"]["200"]["links"]
    assert created["get_customers_id"] == {
        "operationRef": "#/paths/~1customers~1{id}/get",
        "parameters": {"id": "$response.body#/id"},
    }
    source = operation(document, "post", "/customers/{id}/payment_sources")["responses"]["200"]["links"]
    assert source["delete_customers_id_payment_sources_source_id"]["parameters"] == {
        "id": "$request.path.id",
        "source_id": "$response.body#/id",
    }
    listed = operation(document, "get", "/events")["responses"]["200"]["links"]
    assert listed["post_events_event_id_resend"]["parameters"] == {"event_id": "$response.body#/data/0/id"}
    # The e-mail job a test message became can be followed.
    job = operation(document, "post", "/_caja/emails")["responses"]["200"]["links"]
    assert job["get__caja_email_jobs_id"]["parameters"] == {"id": "$response.body#/id"}
    # Every link points at an operation of the document.
    for operations in document["paths"].values():
        for op in operations.values():
            for link in op["responses"].get("200", {}).get("links", {}).values():
                _, path, method = link["operationRef"].rsplit("/", 2)
                assert method in document["paths"][path.replace("~1", "/").replace("~0", "~")], link
