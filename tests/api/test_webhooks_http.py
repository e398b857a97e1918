"""Webhooks, webhook keys and events over plain HTTP: what the SDK cannot send or does not show.

``synchronous``, ``description``, local URLs (the SDK refuses them), live-mode SSRF refusals, the
per-mode limit, the signing secret, filters carried over to page links, and tenancy.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.checks import assert_error_envelope, codes_of, params_of
from tests.conftest import AccountKeys

LOCAL = "http://127.0.0.1:9/hooks"  # loopback: fine in test mode; nothing listens, deliveries fail


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/webhooks", json={"url": LOCAL, **body})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert_error_envelope(body)
    return body


def events_of(client: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = client.get("/events", params={"limit": "250", **params})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


# --- webhooks ---------------------------------------------------------------------------------


def test_create_with_caja_fields_and_a_signing_secret(own: httpx.Client) -> None:
    created = create(own, description="Pagos", subscribed_events=["customer.created"])
    assert created["object"] == "webhook"
    assert created["url"] == LOCAL  # loopback allowed in test mode
    assert created["description"] == "Pagos"
    assert created["status"] == "being_pinged"
    assert created["synchronous"] is False
    assert created["active"] is True
    assert created["livemode"] is False
    assert created["development_enabled"] is True and created["production_enabled"] is False
    secret = created["signing_secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    fetched = own.get(f"/webhooks/{created['id']}").json()
    assert fetched == created
    assert own.get("/webhooks").json()["data"][0]["signing_secret"] == secret
    # Each webhook has its own secret.
    assert create(own)["signing_secret"] != secret


def test_synchronous_webhooks_get_pings_but_no_ordinary_events(own: httpx.Client) -> None:
    sync = create(own, synchronous=True, url="http://127.0.0.1:9/approvals")
    assert sync["synchronous"] is True
    plain = create(own)
    response = own.post("/customers", json={"name": "Ana", "email": "ana@example.com"})
    assert response.status_code == 200
    [event] = events_of(own, type="customer.created")
    assert [log["webhook_id"] for log in event["webhook_logs"]] == [plain["id"]]
    pings = events_of(own, type="webhook_ping")
    assert sorted(p["webhook_logs"][0]["webhook_id"] for p in pings) == sorted([sync["id"], plain["id"]])
    # A plain webhook turned synchronous stops receiving ordinary events.
    changed = own.put(f"/webhooks/{plain['id']}", json={"synchronous": True}).json()
    assert changed["synchronous"] is True
    own.post("/customers", json={"name": "Bea", "email": "bea@example.com"})
    latest = events_of(own, type="customer.created")[0]
    assert latest["webhook_logs"] == [] and latest["webhook_status"] == "not_applicable"


def test_subscriptions_are_checked_against_the_catalogue(own: httpx.Client) -> None:
    everything = create(own)
    assert "customer.created" in everything["subscribed_events"]
    assert "webhook_key.created" in everything["subscribed_events"]
    # Conekta's own types are accepted (a Conekta configuration ports unchanged), repeats dropped.
    conekta_types = create(own, subscribed_events=["charge.chargeback.created", "order.paid", "order.paid"])
    assert conekta_types["subscribed_events"] == ["charge.chargeback.created", "order.paid"]
    body = error(own.post("/webhooks", json={"url": LOCAL, "subscribed_events": ["nope"]}), 422)
    assert params_of(body) == ["subscribed_events[0]"]
    body = error(
        own.post("/webhooks", json={"url": LOCAL, "subscribed_events": ["inbound_payment.lookup"]}), 422
    )
    assert params_of(body) == ["subscribed_events[0]"]
    assert "synchronous" in body["details"][0]["debug_message"]


BAD_FIELDS: list[tuple[str, object]] = [
    ("url", "ftp://example.com/x"),
    ("url", "not a url"),
    ("url", "https:///nohost"),
    ("url", 5),
    ("synchronous", "true"),
    ("description", "x" * 501),
    ("subscribed_events", "customer.created"),
    ("colour", "blue"),
]


def test_bad_fields_are_422_on_their_param(own: httpx.Client) -> None:
    for field, value in BAD_FIELDS:
        body = error(own.post("/webhooks", json={"url": LOCAL, field: value}), 422)
        assert params_of(body) == [field], (field, value)
    assert own.get("/webhooks").json()["data"] == []


def test_url_is_required(own: httpx.Client) -> None:
    body = error(own.post("/webhooks", json={"description": "x"}), 422)
    assert codes_of(body) == ["conekta.errors.parameter_validation.url.missing"]


NOT_PUBLIC = [
    "http://127.0.0.1/hooks",
    "http://localhost:8080/hooks",
    "http://api.localhost/hooks",
    "http://10.1.2.3/hooks",
    "http://192.168.1.10/hooks",
    "http://172.16.0.1/hooks",
    "http://100.64.0.1/hooks",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hooks",
    "http://[fd00::1]/hooks",
    "http://[fe80::1]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://0.0.0.0/hooks",
    "http://224.0.0.1/hooks",
    "http://2130706433/hooks",
    "http://0x7f.0.0.1/hooks",
    "http://127.1/hooks",
    "http://intranet/hooks",
    "http://printer.local/hooks",
    "http://db.internal/hooks",
]


def test_live_mode_refuses_non_public_urls(
    account: AccountKeys, client_for: Callable[[str], httpx.Client]
) -> None:
    live = client_for(account.live_key)
    for url in NOT_PUBLIC:
        body = error(live.post("/webhooks", json={"url": url}), 422)
        assert params_of(body) == ["url"], url
        assert codes_of(body) == ["conekta.errors.parameter_validation.url.not_public"], url
    assert live.get("/webhooks").json()["data"] == []
    # Public endpoints are fine, and an existing live webhook cannot be pointed inwards either.
    created = live.post("/webhooks", json={"url": "https://93.184.215.14/hooks"})
    assert created.status_code == 200, created.text
    assert created.json()["livemode"] is True
    for url in ("http://10.0.0.1/x", "http://localhost/x"):
        moved = error(live.put(f"/webhooks/{created.json()['id']}", json={"url": url}), 422)
        assert codes_of(moved) == ["conekta.errors.parameter_validation.url.not_public"]
    assert live.get(f"/webhooks/{created.json()['id']}").json()["url"] == "https://93.184.215.14/hooks"


def test_at_most_ten_webhooks_per_mode(
    own: httpx.Client, account: AccountKeys, client_for: Callable[[str], httpx.Client]
) -> None:
    made = [create(own, url=f"{LOCAL}/{i}")["id"] for i in range(10)]
    body = error(own.post("/webhooks", json={"url": LOCAL}), 422)
    assert codes_of(body) == ["conekta.errors.processing.webhook.limit_exceeded"]
    assert len(own.get("/webhooks", params={"limit": 50}).json()["data"]) == 10
    # Live mode has its own ten.
    live = client_for(account.live_key)
    assert live.post("/webhooks", json={"url": "https://example.com/h"}).status_code == 200
    # Deleting one makes room again.
    assert own.delete(f"/webhooks/{made[0]}").status_code == 200
    create(own)


def test_put_changes_only_what_it_sends(own: httpx.Client) -> None:
    created = create(own, description="Pagos", subscribed_events=["customer.created"])
    path = f"/webhooks/{created['id']}"
    changed = own.put(path, json={"description": None}).json()
    assert changed["description"] is None
    assert changed["subscribed_events"] == ["customer.created"]
    assert changed["url"] == LOCAL and changed["signing_secret"] == created["signing_secret"]
    for body, param in (({"url": None}, "url"), ({"active": None}, "active"), ({"id": "x"}, "id")):
        assert params_of(error(own.put(path, json=body), 422)) == [param]
    [updated] = events_of(own, type="webhook.updated")
    assert updated["data"]["previous_attributes"] == {"description": "Pagos"}
    assert "signing_secret" not in updated["data"]["object"]
    # A PUT that changes nothing writes no event.
    own.put(path, json={"description": None})
    assert len(events_of(own, type="webhook.updated")) == 1


def test_a_new_url_starts_the_webhook_over_with_a_ping(own: httpx.Client) -> None:
    created = create(own)
    path = f"/webhooks/{created['id']}"
    moved = own.put(path, json={"url": "http://127.0.0.1:9/elsewhere"}).json()
    assert moved["url"] == "http://127.0.0.1:9/elsewhere"
    assert moved["status"] == "being_pinged"
    pings = events_of(own, type="webhook_ping")
    assert len(pings) == 2
    assert pings[0]["webhook_logs"][0]["url"] == "http://127.0.0.1:9/elsewhere"


def test_inactive_webhooks_cannot_be_tested_or_resent_to(own: httpx.Client) -> None:
    paused = create(own, active=False)
    body = error(own.post(f"/webhooks/{paused['id']}/test"), 422)
    assert codes_of(body) == ["conekta.errors.processing.webhook.not_receiving"]
    own.post("/customers", json={"name": "A", "email": "x@example.com"})
    [event] = events_of(own, type="customer.created")
    assert event["webhook_logs"] == []  # inactive: no delivery
    resend = own.post(f"/events/{event['id']}/resend", json={"webhooks_ids": [paused["id"]]})
    assert params_of(error(resend, 422)) == ["webhooks_ids[0]"]
    assert own.put(f"/webhooks/{paused['id']}", json={"active": True}).json()["active"] is True
    assert own.post(f"/webhooks/{paused['id']}/test").status_code == 200
    assert own.post(f"/events/{event['id']}/resend", json={"webhooks_ids": [paused["id"]]}).status_code == 200


def test_delete_answers_the_webhook_once(own: httpx.Client) -> None:
    created = create(own)
    deleted = own.delete(f"/webhooks/{created['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True and deleted.json()["id"] == created["id"]
    assert "signing_secret" not in deleted.json()
    error(own.delete(f"/webhooks/{created['id']}"), 404)
    error(own.post(f"/webhooks/{created['id']}/test"), 404)
    [event] = events_of(own, type="webhook.deleted")
    assert event["data"]["object"]["id"] == created["id"]
    assert event["data"]["object"]["deleted"] is True


def test_list_filters_carry_over_to_page_links(own: httpx.Client) -> None:
    for i in range(3):
        create(own, url=f"https://example.com/shop/{i}")
    create(own, url="https://other.example.org/x")
    page = own.get("/webhooks", params={"url": "example.com/shop", "limit": 2}).json()
    assert len(page["data"]) == 2 and page["has_more"] is True
    query = parse_qs(urlsplit(page["next_page_url"]).query)
    assert query["url"] == ["example.com/shop"]
    rest = own.get(page["next_page_url"]).json()
    assert [w["url"] for w in rest["data"]] == ["https://example.com/shop/0"]
    assert rest["has_more"] is False


# --- events -----------------------------------------------------------------------------------


def test_events_filter_by_type_and_keep_it_in_page_links(own: httpx.Client) -> None:
    for name in ("A", "B", "C"):
        own.post("/customers", json={"name": name, "email": "x@example.com"})
    page = own.get("/events", params={"type": "customer.created", "limit": 2}).json()
    assert [e["type"] for e in page["data"]] == ["customer.created"] * 2
    assert parse_qs(urlsplit(page["next_page_url"]).query)["type"] == ["customer.created"]
    rest = own.get(page["next_page_url"]).json()
    assert [e["data"]["object"]["name"] for e in rest["data"]] == ["A"]
    assert own.get("/events", params={"type": "order.paid"}).json()["data"] == []


def test_resend_validates_its_body(own: httpx.Client) -> None:
    own.post("/customers", json={"name": "A", "email": "x@example.com"})
    event_id = events_of(own)[0]["id"]
    path = f"/events/{event_id}/resend"
    assert params_of(error(own.post(path, json={}), 422)) == ["webhooks_ids"]
    assert params_of(error(own.post(path, json={"webhooks_ids": []}), 422)) == ["webhooks_ids"]
    sync = create(own, synchronous=True)
    assert params_of(error(own.post(path, json={"webhooks_ids": [sync["id"]]}), 422)) == ["webhooks_ids[0]"]


def test_resend_to_several_webhooks_answers_the_first(own: httpx.Client) -> None:
    a = create(own, subscribed_events=["order.paid"])
    b = create(own, subscribed_events=["order.paid"], url="http://127.0.0.1:9/b")
    own.post("/customers", json={"name": "A", "email": "x@example.com"})
    event_id = events_of(own, type="customer.created")[0]["id"]
    response = own.post(f"/events/{event_id}/resend", json={"webhooks_ids": [b["id"], a["id"], b["id"]]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["url"] == "http://127.0.0.1:9/b" and answer["id"].startswith("webhl_")
    logs = own.get(f"/events/{event_id}").json()["webhook_logs"]
    # Repeated ids are sent once.
    assert sorted(log["webhook_id"] for log in logs) == sorted([a["id"], b["id"]])
    assert answer["id"] in [log["id"] for log in logs]


# --- webhook keys -----------------------------------------------------------------------------


def test_webhook_key_bodies(own: httpx.Client) -> None:
    created = own.post("/webhook_keys", json={"active": False})
    assert created.status_code == 200
    key = created.json()
    assert key["active"] is False and isinstance(key["deactivated_at"], int)
    path = f"/webhook_keys/{key['id']}"
    # An empty PUT changes nothing; unknown fields and wrong types are 422.
    assert own.put(path, json={}).json()["active"] is False
    assert params_of(error(own.put(path, json={"active": "yes"}), 422)) == ["active"]
    assert params_of(error(own.post("/webhook_keys", json={"public_key": "mine"}), 422)) == ["public_key"]
    assert own.put(path, json={"active": True}).json()["deactivated_at"] is None


def test_deleting_every_key_leaves_webhooks_creatable_with_a_fresh_key(own: httpx.Client) -> None:
    create(own)
    [key] = own.get("/webhook_keys").json()["data"]
    assert own.delete(f"/webhook_keys/{key['id']}").status_code == 200
    create(own)
    [fresh] = own.get("/webhook_keys").json()["data"]
    assert fresh["id"] != key["id"] and fresh["active"] is True


# --- tenancy ----------------------------------------------------------------------------------


def test_accounts_and_modes_never_see_each_others_webhooks_events_or_keys(
    own: httpx.Client,
    account: AccountKeys,
    new_account: Callable[[str], AccountKeys],
    client_for: Callable[[str], httpx.Client],
) -> None:
    hook = create(own)
    key = own.post("/webhook_keys").json()
    own.post("/customers", json={"name": "A", "email": "x@example.com"})
    event_id = events_of(own, type="customer.created")[0]["id"]
    other = client_for(new_account("Ajeno").test_key)
    live = client_for(account.live_key)
    for stranger in (other, live):
        error(stranger.get(f"/webhooks/{hook['id']}"), 404)
        error(stranger.put(f"/webhooks/{hook['id']}", json={"active": False}), 404)
        error(stranger.post(f"/webhooks/{hook['id']}/test"), 404)
        error(stranger.delete(f"/webhooks/{hook['id']}"), 404)
        error(stranger.get(f"/webhook_keys/{key['id']}"), 404)
        error(stranger.delete(f"/webhook_keys/{key['id']}"), 404)
        error(stranger.get(f"/events/{event_id}"), 404)
        assert stranger.get("/webhooks").json()["data"] == []
        assert stranger.get("/webhook_keys").json()["data"] == []
        assert all(e["id"] != event_id for e in events_of(stranger))
        theirs = stranger.post("/webhooks", json={"url": "https://example.com/theirs"}).json()
        body = error(own.post(f"/events/{event_id}/resend", json={"webhooks_ids": [theirs["id"]]}), 422)
        assert params_of(body) == ["webhooks_ids[0]"]
    assert own.get(f"/webhooks/{hook['id']}").json()["active"] is True
