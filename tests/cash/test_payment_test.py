"""``POST /payment_test``: the seed's three test payloads drive the real network path (test keys only)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.cash.conftest import Merchant
from tests.conftest import Server
from tests.tools.network_client import NetworkClient
from tests.tools.receiver import Reply


def run(merchant: Merchant, **body: object) -> httpx.Response:
    return merchant.api.post("/payment_test", json=body)


def test_the_seeds_lookup_payload(merchant: Merchant) -> None:
    _, _, reference = merchant.reference()
    response = run(merchant, event_type="inbound_payment.lookup", reference=reference)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["object"] == "payment_test"
    assert answer["lookup"]["payable"] is True
    assert (answer["lookup"]["min_amount"], answer["lookup"]["max_amount"]) == (5_000, 500_000)
    assert "payment" not in answer
    assert len(merchant.approvals("inbound_payment.lookup")) == 1
    assert merchant.approvals("inbound_payment.payment_attempt") == []


def test_the_seeds_payment_attempt_payload_with_a_string_amount(merchant: Merchant) -> None:
    _, _, reference = merchant.reference()
    answer = run(merchant, event_type="inbound_payment.payment_attempt", reference=reference, amount="10000")
    assert answer.status_code == 200, answer.text
    payment = answer.json()["payment"]
    assert payment["status"] == "paid"
    assert len(payment["authorization_code"]) == 8
    attempt = merchant.approvals("inbound_payment.payment_attempt")[0]["data"]["object"]
    assert attempt["amount"] == 10_000
    orders = merchant.api.get("/orders").json()["data"]
    assert [o["amount"] for o in orders] == [10_000]
    assert orders[0]["charges"]["data"][0]["id"] == answer.json()["charge_id"]

    as_integer = run(
        merchant, event_type="inbound_payment.payment_attempt", reference=reference, amount=20_000
    )
    assert as_integer.json()["payment"]["status"] == "paid"


def test_a_declined_lookup_stops_before_the_payment(merchant: Merchant) -> None:
    _, _, reference = merchant.reference()
    merchant.approve({"payable": False, "failure_code": "15"})
    answer = run(merchant, event_type="inbound_payment.payment_attempt", reference=reference, amount="10000")
    assert answer.json()["lookup"]["failure_code"] == "15"
    assert "payment" not in answer.json()
    assert merchant.approvals("inbound_payment.payment_attempt") == []


def test_the_seeds_reverse_payload_reverses_the_latest_payment(merchant: Merchant) -> None:
    _, _, reference = merchant.reference()
    for amount in ("10000", "20000"):
        run(merchant, event_type="inbound_payment.payment_attempt", reference=reference, amount=amount)
    reversed_ = run(merchant, event_type="inbound_payment.reverse", reference=reference)
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["reversal"]["amount"] == 20_000
    statuses = {o["amount"]: o["payment_status"] for o in merchant.api.get("/orders").json()["data"]}
    assert statuses == {10_000: "paid", 20_000: "reversed"}
    run(merchant, event_type="inbound_payment.reverse", reference=reference)
    nothing_left = run(merchant, event_type="inbound_payment.reverse", reference=reference)
    assert nothing_left.status_code == 404
    assert nothing_left.json()["type"] == "resource_not_found_error"


def test_a_reverse_undoes_only_what_the_sandbox_store_took(
    merchant: Merchant, network: NetworkClient
) -> None:
    _, _, reference = merchant.reference()
    paid = run(
        merchant,
        event_type="inbound_payment.payment_attempt",
        reference=reference,
        amount="10000",
        store_name="Soriana",
    )
    assert paid.json()["payment"]["status"] == "paid", paid.text
    network.lookup(reference, store="OXXO")
    taken = network.pay(reference, 20_000, "oxxo-1", store="OXXO")
    assert taken["status"] == "paid"
    # The latest payment is the real network's: the sandbox may not undo it, only its own.
    reversed_ = run(merchant, event_type="inbound_payment.reverse", reference=reference)
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["reversal"]["amount"] == 10_000
    assert reversed_.json()["store"] == "Soriana"  # where that payment was made, not the default
    nothing_left = run(merchant, event_type="inbound_payment.reverse", reference=reference, store_name="OXXO")
    assert nothing_left.status_code == 404
    assert network.reverse(taken["authorization_code"]).status_code == 200


def test_only_the_callers_own_references(merchant: Merchant, new_merchant: Callable[[str], Merchant]) -> None:
    other = new_merchant("Otro Comercio")
    _, _, theirs = other.reference()
    _, _, mine = merchant.reference()
    # The first call makes the account's sandbox network; the second reads it back from the database.
    assert run(merchant, event_type="inbound_payment.lookup", reference=mine).json()["lookup"]["payable"]
    answer = run(merchant, event_type="inbound_payment.payment_attempt", reference=theirs, amount="10000")
    assert answer.json()["lookup"]["failure_code"] == "01"
    assert other.approvals() == [] or all(
        c["type"] not in {"inbound_payment.lookup", "inbound_payment.payment_attempt"}
        for c in other.approvals()
    )


def test_live_keys_are_refused(server: Server, merchant: Merchant) -> None:
    live = httpx.post(
        f"{server.base_url}/payment_test",
        json={"event_type": "inbound_payment.lookup", "reference": "10000000000000000000"},
        headers={"Authorization": f"Bearer {merchant.keys.live_key}"},
    )
    assert live.status_code == 403
    assert live.json()["type"] == "authentication_error"


def test_bad_payloads_are_422s_naming_the_param(merchant: Merchant) -> None:
    _, _, reference = merchant.reference()
    for body, param in (
        (
            {"event_type": "inbound_payment.payment_attempt", "reference": reference, "amount": "diez"},
            "amount",
        ),
        ({"event_type": "inbound_payment.payment_attempt", "reference": reference, "amount": 1.5}, "amount"),
        ({"event_type": "inbound_payment.payment_attempt", "reference": reference}, "amount"),
        (
            {"event_type": "inbound_payment.payment_attempt", "reference": reference, "amount": "9" * 23},
            "amount",
        ),
        (
            {"event_type": "inbound_payment.payment_attempt", "reference": reference, "amount": 2**64},
            "amount",
        ),
        ({"event_type": "charge.paid", "reference": reference}, "event_type"),
        ({"event_type": "inbound_payment.lookup"}, "reference"),
        (
            {"event_type": "inbound_payment.lookup", "reference": reference, "store_name": "OX\u0000XO"},
            "store_name",
        ),
    ):
        response = run(merchant, **body)
        assert response.status_code == 422, (body, response.text)
        assert param in {d["param"] for d in response.json()["details"]}, response.text
    assert merchant.api.get("/orders").json()["data"] == []


def approval_calls(merchant: Merchant, webhook_id: str, count: int, **params: str) -> list[dict[str, Any]]:
    """The webhook's logged approval calls, once ``count`` are there (the log is written just after)."""
    deadline = time.monotonic() + 10
    while True:
        listed = merchant.api.get(f"/_caja/webhooks/{webhook_id}/approval_calls", params=params)
        assert listed.status_code == 200, listed.text
        if len(listed.json()["data"]) >= count or time.monotonic() > deadline:
            return list(listed.json()["data"])
        time.sleep(0.1)


def test_a_synchronous_webhooks_calls_are_logged_with_what_came_back(
    server: Server, merchant: Merchant, new_merchant: Callable[[str], Merchant]
) -> None:
    hooks = merchant.api.get("/webhooks").json()["data"]
    [sync_id] = [h["id"] for h in hooks if h["synchronous"]]
    _, _, reference = merchant.reference()
    merchant.approve({"payable": True, "min_amount": 5_000, "max_amount": 50_000})
    run(merchant, event_type="inbound_payment.payment_attempt", reference=reference, amount="10000")
    merchant.approve(Reply(body=b"<html>no</html>"))
    run(merchant, event_type="inbound_payment.lookup", reference=reference)

    broken, attempt, lookup = approval_calls(merchant, sync_id, 3)

    assert [c["type"] for c in (broken, attempt, lookup)] == [
        "inbound_payment.lookup",
        "inbound_payment.payment_attempt",
        "inbound_payment.lookup",
    ]
    assert all(c["object"] == "approval_call" and c["reference"] == reference for c in (broken, attempt))
    assert lookup["reply"] == {"payable": True, "min_amount": 5_000, "max_amount": 50_000}
    assert lookup["amount"] == 0 and lookup["error"] is None
    assert attempt["amount"] == 10_000 and attempt["reply"] == {
        "payable": True,
        "min_amount": 5_000,
        "max_amount": 50_000,
    }
    order_charge = merchant.api.get("/charges").json()["data"][0]["id"]
    assert attempt["charge_id"] == order_charge
    assert json.loads(attempt["request_body"])["type"] == "inbound_payment.payment_attempt"
    assert broken["reply"] is None and broken["http_status"] == 200
    assert broken["error"].startswith("bad_json") and broken["response_body"] == "<html>no</html>"
    [older] = approval_calls(merchant, sync_id, 1, limit="1", next=broken["id"])
    assert older["id"] == attempt["id"]

    other = new_merchant("Otro Comercio")
    theirs = other.api.get(f"/_caja/webhooks/{sync_id}/approval_calls")
    assert theirs.status_code == 404 and theirs.json()["type"] == "resource_not_found_error"
    live = httpx.get(
        f"{server.base_url}/_caja/webhooks/{sync_id}/approval_calls",
        headers={"Authorization": f"Bearer {merchant.keys.live_key}"},
    )
    assert live.status_code == 403
