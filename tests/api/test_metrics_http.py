"""``GET /metrics``: the operator's token only, and requests counted by route template."""

from __future__ import annotations

import base64

import httpx

from tests.checks import assert_error_envelope
from tests.conftest import Server
from tests.tools.metrics import scrape


def test_metrics_answer_only_the_operators_token(server: Server, http: httpx.Client) -> None:
    url = f"{server.base_url}/metrics"
    token = server.admin_token
    assert token
    basic = base64.b64encode(f"{token}:".encode()).decode()
    refused = {
        "no credentials": httpx.get(url),
        "the merchant's test key": httpx.get(url, headers={"Authorization": f"Bearer {server.api_key}"}),
        "another token": httpx.get(url, headers={"Authorization": f"Bearer {token}x"}),
        "the token as Basic": httpx.get(url, headers={"Authorization": f"Basic {basic}"}),
    }
    for what, response in refused.items():
        assert response.status_code == 401, what
        body = response.json()
        assert_error_envelope(body)
        assert body["type"] == "authentication_error", what
        # Nothing about the process leaks into a refusal.
        assert "caja_" not in response.text and token not in response.text, what
    answered = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert answered.status_code == 200
    assert answered.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    # The process's own collectors are there too.
    assert "process_cpu_seconds_total" in answered.text and "python_info" in answered.text


def test_requests_are_counted_by_route_template_and_status(server: Server, http: httpx.Client) -> None:
    ids = [
        http.post("/customers", json={"name": f"Métrica {i}", "email": f"metrica{i}@example.com"}).json()[
            "id"
        ]
        for i in range(2)
    ]
    before = scrape(server.base_url, server.admin_token)
    for customer_id in ids:
        assert http.get(f"/customers/{customer_id}").status_code == 200
    assert http.get("/customers/cus_2noexiste").status_code == 404
    assert http.get(f"/no/such/route/{ids[0]}").status_code == 404
    after = scrape(server.base_url, server.admin_token)

    def grew(route: str, status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        return after.value("caja_http_requests_total", **labels) - before.value(
            "caja_http_requests_total", **labels
        )

    assert grew("/customers/{id}", "200") == 2
    assert grew("/customers/{id}", "404") == 1
    assert grew("unmatched", "404") == 1
    timed = {"method": "GET", "route": "/customers/{id}"}
    count = "caja_http_request_duration_seconds_count"
    assert after.value(count, **timed) - before.value(count, **timed) == 3
    # No id ever becomes a label: series stay bounded whatever the callers send.
    routes = {labels["route"] for labels in after.labels_of("caja_http_requests_total")}
    assert not any(customer_id in route for route in routes for customer_id in ids), routes
    assert after.value("caja_http_requests_in_flight") >= 1  # the scrape itself
