"""The store network's side of recurrent cash, end to end over HTTP on a real server (both backends)."""

from __future__ import annotations

import json
import re
import secrets
import time

import httpx
import pytest

from tests.cash.conftest import Merchant
from tests.conftest import Server
from tests.tools.metrics import Scrape, scrape
from tests.tools.network_client import NetworkClient
from tests.tools.receiver import Reply

# "Códigos de rechazo", seed page 000 (Conekta's recurrent cash guide), copied as the contract:
# the test must not depend on files outside the repository.
SEED_TABLE = {
    "01": "Referencia no encontrada",
    "02": "Cantidad inválida",
    "03": "Referencia expirada",
    "10": "Referencia sin deuda",
    "13": "Referencia inactiva",
    "14": "Referencia cancelada",
    "15": "Usuario bloqueado",
    "16": "Cantidad no permitida",
    "18": "Comercio fuera de horario",
    "19": "No autorizado",
    "35": "Monto fuera del rango permitido",
    "36": "Referencia ya pagada",
}


def txn() -> str:
    return f"pos-{secrets.token_hex(8)}"


# --- authentication -------------------------------------------------------------------------


def test_unsigned_and_badly_signed_requests_are_refused(server: Server, network: NetworkClient) -> None:
    body = json.dumps({"reference": "10000000000000000000", "store": "7 Eleven"}).encode()
    path = "/network/v1/lookups"
    unsigned = httpx.post(f"{server.base_url}{path}", content=body)
    assert unsigned.status_code == 401
    assert unsigned.json()["type"] == "authentication_error"

    headers = network.headers("POST", path, body)
    tampered = network.http.post(path, content=body.replace(b"7 Eleven", b"8 Eleven"), headers=headers)
    assert tampered.status_code == 401

    other_path = network.http.post("/network/v1/payments", content=body, headers=headers)
    assert other_path.status_code == 401

    stale = network.headers("POST", path, body, timestamp=int(time.time()) - 3600)
    assert network.http.post(path, content=body, headers=stale).status_code == 401

    wrong_secret = NetworkClient(server.base_url, network.network_id, "nsk_not-the-secret")
    try:
        assert wrong_secret.post(path, {"reference": "1", "store": "x"}).status_code == 401
    finally:
        wrong_secret.close()

    genuine = network.http.post(path, content=body, headers=headers)
    assert genuine.status_code == 200
    assert genuine.json()["failure_code"] == "01"


def test_an_operator_rotates_and_revokes_a_networks_credentials(server: Server) -> None:
    issued = json.loads(server.cli("networks", "create", "--name", "Red Rotada", "--test", "--json"))
    old = NetworkClient(server.base_url, issued["id"], issued["secret"])
    unused = json.loads(server.cli("networks", "create", "--name", "Red Filtrada", "--json"))
    try:
        assert old.lookup("10000000000000000000")["failure_code"] == "01"  # the server has it cached

        rotated = json.loads(server.cli("networks", "rotate", issued["id"], "--grace", "600", "--json"))
        assert rotated["secret"] != issued["secret"]
        assert rotated["previous_secret_expires_at"] >= int(time.time()) + 590
        new = NetworkClient(server.base_url, issued["id"], rotated["secret"])
        try:
            assert new.lookup("10000000000000000000")["failure_code"] == "01"  # accepted at once
        finally:
            new.close()
        assert old.lookup("10000000000000000000")["failure_code"] == "01"  # still, during the grace

        revoked = json.loads(server.cli("networks", "revoke", unused["id"], "--json"))
        assert revoked["revoked_at"] is not None
        leaked = NetworkClient(server.base_url, unused["id"], unused["secret"])
        try:
            refused = leaked.post("/network/v1/lookups", {"reference": "1", "store": "x"})
            assert refused.status_code == 401 and refused.json()["type"] == "authentication_error"
        finally:
            leaked.close()
        listed = [json.loads(line) for line in server.cli("networks", "list", "--json").splitlines()]
        states = {n["id"]: n["revoked_at"] is not None for n in listed}
        assert states[issued["id"]] is False and states[unused["id"]] is True
        assert all("secret" not in n for n in listed)
        with pytest.raises(AssertionError, match="no active network"):
            server.cli("networks", "rotate", unused["id"])
        with pytest.raises(AssertionError, match="no network"):
            server.cli("networks", "revoke", "net_unknown")
    finally:
        old.close()


def test_a_malformed_body_is_a_422_naming_the_param(network: NetworkClient) -> None:
    response = network.post("/network/v1/payments", {"reference": "1", "amount": "100", "store": "x"})
    assert response.status_code == 422
    params = {d["param"] for d in response.json()["details"]}
    assert {"amount", "transaction_id"} <= params
    # A store name is printed on charges and receipts: no control characters (PostgreSQL holds no NUL).
    for store in ("OX\u0000XO", "OX\nXO", "\u007f"):
        bad = network.post("/network/v1/lookups", {"reference": "1", "store": store})
        assert bad.status_code == 422, (store, bad.text)
        assert bad.json()["details"][0]["param"] == "store"


@pytest.mark.parametrize("amount", [2**63, -(2**63) - 1, 10**30, 10**12 + 1])
def test_an_amount_no_payment_could_be_is_a_422_not_a_decline(
    merchant: Merchant, network: NetworkClient, amount: int
) -> None:
    _, _, reference = merchant.reference()
    network.lookup(reference)
    body = {"reference": reference, "amount": amount, "store": "OXXO", "transaction_id": txn()}
    for _ in range(2):  # and again on a retry: nothing was recorded
        response = network.post("/network/v1/payments", body)
        assert response.status_code == 422, response.text
        assert response.json()["details"][0]["param"] == "amount"
    assert network.pay(reference, 10**12, txn())["failure_code"] == "16"  # the largest is declined


def test_the_failure_code_table_is_served_with_the_seeds_descriptions(server: Server) -> None:
    table = httpx.get(f"{server.base_url}/network/v1/failure_codes").json()["data"]
    served = {row["failure_code"]: row["description"] for row in table}
    assert served == SEED_TABLE


# --- lookups ----------------------------------------------------------------------------------


def test_a_lookup_asks_the_merchant_and_returns_its_range(merchant: Merchant, network: NetworkClient) -> None:
    customer_id, _, reference = merchant.reference()
    answer = network.lookup(reference, store="Farmacias del Ahorro")
    assert answer["payable"] is True
    assert (answer["min_amount"], answer["max_amount"]) == (5_000, 500_000)
    assert answer["id"].startswith("lkp_")
    call = merchant.approvals("inbound_payment.lookup")[-1]
    assert call["object"] == "event" and call["webhook_status"] == "not_applicable"
    inbound = call["data"]["object"]
    assert inbound["object"] == "inbound_payment"
    assert inbound["customer_id"] == customer_id
    assert inbound["amount"] == 0 and inbound["currency"] == "MXN"
    assert inbound["payment_method"]["reference"] == reference
    assert inbound["payment_method"]["object"] == "cash_payment"
    assert re.fullmatch(r"[0-9a-f]{24}", inbound["charge_id"])


def test_the_network_caps_the_merchants_range(merchant: Merchant, network: NetworkClient) -> None:
    _, _, reference = merchant.reference()
    merchant.approve({"payable": True})
    answer = network.lookup(reference)
    assert (answer["min_amount"], answer["max_amount"]) == (100, 1_000_000)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ({"payable": False, "failure_code": "15"}, "15"),
        ({"payable": False, "failure_code": "18"}, "18"),
        ({"payable": False, "failure_code": "36"}, "36"),
        ({"payable": False, "failure_code": "77"}, "19"),  # not in the table: not authorized
        ({"payable": False}, "19"),
        ({"payable": True, "max_amount": 0}, "10"),
        ({"payable": True, "min_amount": 5000, "max_amount": 0}, "10"),
        ({"payable": True, "min_amount": 2_000_000}, "16"),  # beyond what a store may take
        ({"payable": "yes"}, "19"),  # out of contract
        (Reply(status=500), "19"),
        (Reply(body=b"<html>"), "19"),
    ],
)
def test_lookup_declines(merchant: Merchant, network: NetworkClient, reply: object, code: str) -> None:
    _, _, reference = merchant.reference()
    merchant.approve(reply)  # type: ignore[arg-type]
    answer = network.lookup(reference)
    assert answer["payable"] is False
    assert answer["failure_code"] == code
    assert answer["failure_message"]


def test_a_merchant_too_slow_to_answer_declines_with_19(merchant: Merchant, network: NetworkClient) -> None:
    _, _, reference = merchant.reference()
    # A late "payable" is no answer: had Caja waited for it, the store would see payable: true.
    merchant.approve(Reply(body=b'{"payable": true}', delay=2.6))
    answer = network.lookup(reference)
    assert answer["failure_code"] == "19"


def test_no_synchronous_webhook_declines_with_19(merchant: Merchant, network: NetworkClient) -> None:
    _, _, reference = merchant.reference()
    hooks = merchant.api.get("/webhooks").json()["data"]
    for hook in hooks:
        if hook["synchronous"]:
            assert merchant.api.delete(f"/webhooks/{hook['id']}").status_code == 200
    assert network.lookup(reference)["failure_code"] == "19"


def test_unknown_references_and_clabes_are_not_found(merchant: Merchant, network: NetworkClient) -> None:
    assert network.lookup("10000000000000000000")["failure_code"] == "01"
    created = merchant.api.post(
        "/customers",
        json={"name": "Ana", "email": "ana@example.com", "payment_sources": [{"type": "spei_recurrent"}]},
    ).json()
    clabe = created["payment_sources"]["data"][0]["reference"]
    assert network.lookup(clabe)["failure_code"] == "01"
    assert merchant.approvals("inbound_payment.lookup") == []


def test_deleted_sources_and_customers(merchant: Merchant, network: NetworkClient) -> None:
    customer_id, source_id, reference = merchant.reference()
    other_customer, _, other_reference = merchant.reference()
    deleted = merchant.api.delete(f"/customers/{customer_id}/payment_sources/{source_id}")
    assert deleted.status_code == 200
    assert network.lookup(reference)["failure_code"] == "13"
    assert merchant.api.delete(f"/customers/{other_customer}").status_code == 200
    assert network.lookup(other_reference)["failure_code"] == "14"


def test_a_test_network_never_sees_live_references(
    server: Server, merchant: Merchant, network: NetworkClient
) -> None:
    live = httpx.Client(
        base_url=server.base_url,
        headers={
            "Authorization": f"Bearer {merchant.keys.live_key}",
            "Accept": "application/vnd.conekta-v2.1.0+json",
        },
    )
    with live:
        created = live.post(
            "/customers",
            json={"name": "Live", "email": "l@example.com", "payment_sources": [{"type": "cash_recurrent"}]},
        )
    reference = created.json()["payment_sources"]["data"][0]["reference"]
    assert network.lookup(reference)["failure_code"] == "01"


# --- payments ---------------------------------------------------------------------------------


def test_a_payment_creates_a_paid_order_and_charge_with_events_and_a_receipt(
    server: Server, merchant: Merchant, network: NetworkClient
) -> None:
    customer_id, _, reference = merchant.reference(email="pagador@example.com")
    lookup = network.lookup(reference, store="Soriana")
    transaction = txn()
    paid = network.pay(
        reference, 20_000, transaction, store="Soriana", cashier="cajero-7", lookup_id=lookup["id"]
    )
    assert paid["status"] == "paid", paid
    assert re.fullmatch(r"[0-9]{8}", paid["authorization_code"])
    assert paid["fee"] == 905  # 2.9% + $2.00, plus 16% IVA: the seed's sandbox example

    attempt = merchant.approvals("inbound_payment.payment_attempt")[-1]["data"]["object"]
    assert attempt["amount"] == 20_000 and attempt["fee"] == 905
    charge_id = attempt["charge_id"]

    orders = merchant.api.get("/orders").json()["data"]
    assert len(orders) == 1
    order = orders[0]
    assert order["payment_status"] == "paid"
    assert order["amount"] == 20_000
    assert order["customer_info"]["customer_id"] == customer_id
    charge = order["charges"]["data"][0]
    assert charge["id"] == charge_id
    assert charge["status"] == "paid"
    assert charge["order_id"] == order["id"]
    method = charge["payment_method"]
    assert method["object"] == "cash_payment" and method["type"] == "cash"
    assert method["reference"] == reference and method["store_name"] == "Soriana"
    assert method["auth_code"] == int(paid["authorization_code"])
    assert method["cashier_id"] == "cajero-7"
    assert httpx.get(method["barcode_url"]).headers["content-type"] == "image/png"

    wanted = ["order.created", "charge.created", "charge.paid", "order.paid"]
    merchant.receiver.wait_for_sync(
        lambda: all(merchant.events(t) for t in wanted), timeout=15, what="the four payment events"
    )
    assert merchant.events("charge.created")[0]["data"]["object"]["status"] == "pending_payment"
    charge_paid = merchant.events("charge.paid")[0]
    assert charge_paid["data"]["object"]["id"] == charge_id
    assert charge_paid["data"]["previous_attributes"] == {"status": "pending_payment"}
    assert merchant.events("order.paid")[0]["data"]["object"]["payment_status"] == "paid"

    def receipt() -> list[dict[str, object]]:
        emails = merchant.api.get("/_caja/emails").json()["data"]
        return [e for e in emails if "pagador@example.com" in json.dumps(e)]

    merchant.receiver.wait_for_sync(lambda: bool(receipt()), timeout=15, what="the payer's receipt")
    text = json.dumps(receipt()[0], ensure_ascii=False)
    # The receipt names the merchant the reference belongs to (read with the reference itself).
    assert "Pago exitoso" in text and "Tienda de Don Pepe" in text
    # Its job, followed like any e-mail Caja sends, went out as that message. The catcher stores the
    # message before the dispatcher, back from SMTP, marks the job sent: wait for the second step too.
    job_path = f"/_caja/email_jobs/{receipt()[0]['job_id']}"
    merchant.receiver.wait_for_sync(
        lambda: merchant.api.get(job_path).json()["status"] != "sending", timeout=15, what="the receipt's job"
    )
    job = merchant.api.get(job_path).json()
    assert job["status"] == "sent" and job["caught_email_id"] == receipt()[0]["id"]
    assert job["template"] == "pago_exitoso" and job["to"] == ["pagador@example.com"]


def test_a_retry_gets_the_same_answer_and_no_second_charge(
    merchant: Merchant, network: NetworkClient
) -> None:
    _, _, reference = merchant.reference()
    transaction = txn()
    first = network.pay(reference, 10_000, transaction)
    again = network.pay(reference, 10_000, transaction)
    assert first["status"] == "paid"
    assert again == first
    assert len(merchant.api.get("/charges").json()["data"]) == 1
    assert len(merchant.approvals("inbound_payment.payment_attempt")) == 1

    reused = network.post(
        "/network/v1/payments",
        {"reference": reference, "amount": 10_001, "store": "7 Eleven", "transaction_id": transaction},
    )
    assert reused.status_code == 409
    assert reused.json()["details"][0]["param"] == "transaction_id"


def test_a_declined_payment_is_declined_again_on_retry(merchant: Merchant, network: NetworkClient) -> None:
    _, _, reference = merchant.reference()
    network.lookup(reference)
    transaction = txn()
    declined = network.pay(reference, 600_000, transaction)  # above the merchant's 500,000
    assert (declined["status"], declined["failure_code"]) == ("declined", "35")
    merchant.approve({"payable": True, "min_amount": 1, "max_amount": 900_000})
    assert network.pay(reference, 600_000, transaction) == declined


@pytest.mark.parametrize(
    ("amount", "code"),
    [(0, "02"), (-500, "02"), (1_000_001, "16"), (50, "16"), (4_999, "35"), (500_001, "35")],
)
def test_amount_declines(merchant: Merchant, network: NetworkClient, amount: int, code: str) -> None:
    _, _, reference = merchant.reference()
    network.lookup(reference)
    answer = network.pay(reference, amount, txn())
    assert (answer["status"], answer["failure_code"]) == ("declined", code)
    assert merchant.api.get("/charges").json()["data"] == []


def test_the_merchant_can_refuse_the_amount_at_payment_attempt(
    merchant: Merchant, network: NetworkClient
) -> None:
    _, _, reference = merchant.reference()
    network.lookup(reference)
    merchant.approve({"payable": False})
    assert network.pay(reference, 10_000, txn())["failure_code"] == "16"
    merchant.approve({"payable": False, "failure_code": "15"})
    assert network.pay(reference, 10_000, txn())["failure_code"] == "15"
    # Approving nothing at all, whatever the minimum, is "no debt" here as at the lookup.
    merchant.approve({"payable": True, "min_amount": 5_000, "max_amount": 0})
    assert network.pay(reference, 10_000, txn())["failure_code"] == "10"
    merchant.approve({"payable": True, "max_amount": 9_999})
    assert network.pay(reference, 10_000, txn())["failure_code"] == "35"
    assert merchant.api.get("/orders").json()["data"] == []


def test_a_lookup_pays_once_then_36(merchant: Merchant, network: NetworkClient) -> None:
    _, _, reference = merchant.reference()
    lookup = network.lookup(reference)
    assert network.pay(reference, 10_000, txn(), lookup_id=lookup["id"])["status"] == "paid"
    second = network.pay(reference, 10_000, txn(), lookup_id=lookup["id"])
    assert (second["status"], second["failure_code"]) == ("declined", "36")


def test_a_payment_without_a_lookup_asks_for_one_first(merchant: Merchant, network: NetworkClient) -> None:
    _, _, reference = merchant.reference()
    assert network.pay(reference, 10_000, txn(), store="Al Super")["status"] == "paid"
    assert len(merchant.approvals("inbound_payment.lookup")) == 1
    assert len(merchant.approvals("inbound_payment.payment_attempt")) == 1


def test_a_reference_is_paid_again_and_again(merchant: Merchant, network: NetworkClient) -> None:
    _, _, reference = merchant.reference()
    codes = {network.pay(reference, 10_000 + i, txn())["authorization_code"] for i in range(3)}
    assert len(codes) == 3
    orders = merchant.api.get("/orders").json()["data"]
    assert sorted(o["amount"] for o in orders) == [10_000, 10_001, 10_002]


# --- reversals --------------------------------------------------------------------------------


def test_a_reversal_reverses_charge_and_order_once(
    server: Server, merchant: Merchant, network: NetworkClient, network_credentials: dict[str, str]
) -> None:
    _, _, reference = merchant.reference()
    paid = network.pay(reference, 15_000, txn())
    code = paid["authorization_code"]

    other = json.loads(server.cli("networks", "create", "--name", "Otra red", "--test", "--json"))
    stranger = NetworkClient(server.base_url, other["id"], other["secret"])
    try:
        assert stranger.reverse(code).status_code == 404  # only the network that took the cash
    finally:
        stranger.close()

    reversed_ = network.reverse(code)
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["status"] == "reversed"
    assert network.reverse(code).json() == reversed_.json()  # idempotent
    assert network.reverse("00000001").status_code == 404

    order = merchant.api.get("/orders").json()["data"][0]
    assert order["payment_status"] == "reversed"
    assert order["charges"]["data"][0]["status"] == "reversed"
    merchant.receiver.wait_for_sync(
        lambda: bool(merchant.events("charge.reversed")) and bool(merchant.events("order.reversed")),
        timeout=15,
        what="the reversal events",
    )
    assert len(merchant.events("charge.reversed")) == 1
    event = merchant.events("order.reversed")[0]["data"]
    assert event["object"]["payment_status"] == "reversed"
    assert event["previous_attributes"] == {"payment_status": "paid"}


def test_server_timing_tells_the_merchants_time_from_cajas(
    merchant: Merchant, network: NetworkClient
) -> None:
    _, _, reference = merchant.reference()
    merchant.approve(Reply(body=b'{"payable": true}', delay=0.3))
    response = network.post("/network/v1/lookups", {"reference": reference, "store": "Soriana"})
    timings = dict(re.findall(r"(\w+);dur=([0-9.]+)", response.headers["server-timing"]))
    assert float(timings["merchant"]) >= 300  # the endpoint's own 0.3 s delay, reported
    assert float(timings["caja"]) >= 0
    # The lookup is recorded in a unit of work: part of Caja's own time, never more than it.
    assert 0 < float(timings["db"]) <= float(timings["caja"])
    assert float(timings["db"]) < 300  # the merchant's wait is not counted as the database's
    unknown = network.post("/network/v1/lookups", {"reference": "10000000000000000000", "store": "Soriana"})
    assert "merchant;dur=0.00" in unknown.headers["server-timing"]


def test_a_named_lookup_pays_only_at_its_own_store(merchant: Merchant, network: NetworkClient) -> None:
    _, _, reference = merchant.reference()
    lookup = network.lookup(reference, store="Soriana")
    elsewhere = network.post(
        "/network/v1/payments",
        {
            "reference": reference,
            "amount": 10_000,
            "store": "Farmatodo",
            "transaction_id": txn(),
            "lookup_id": lookup["id"],
        },
    )
    assert elsewhere.status_code == 404
    assert network.pay(reference, 10_000, txn(), store="Soriana", lookup_id=lookup["id"])["status"] == "paid"


def test_metrics_count_store_calls_merchant_answers_and_the_jobs_they_made(
    server: Server, merchant: Merchant, network: NetworkClient
) -> None:
    before = scrape(server.base_url, server.admin_token)
    assert network.lookup("10000000000000000000")["failure_code"] == "01"
    _, _, reference = merchant.reference(email="metricas@example.com")
    network.lookup(reference)
    paid = network.pay(reference, 15_000, txn())
    assert network.reverse(paid["authorization_code"]).json()["status"] == "reversed"
    merchant.receiver.wait_for_sync(lambda: bool(merchant.events("order.reversed")), timeout=15)

    def grew(after: Scrape, name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    after = scrape(server.base_url, server.admin_token)
    calls = "caja_store_calls_total"
    assert grew(after, calls, call="lookup", outcome="declined", failure_code="01") == 1
    assert grew(after, calls, call="lookup", outcome="payable", failure_code="") == 1
    assert grew(after, calls, call="payment", outcome="paid", failure_code="") == 1
    assert grew(after, calls, call="reversal", outcome="reversed", failure_code="") == 1
    approvals = "caja_merchant_approvals_total"
    for event_type in ("inbound_payment.lookup", "inbound_payment.payment_attempt"):
        assert grew(after, approvals, event_type=event_type, outcome="payable") == 1, event_type
        timed = "caja_merchant_approval_seconds_count"
        assert grew(after, timed, event_type=event_type) == 1, event_type

    # The six events reached the merchant, and the receipt its catcher: each attempt is counted
    # once the dispatcher has recorded it, a moment after the answer that ended it.
    def recorded() -> Scrape:
        return scrape(server.base_url, server.admin_token)

    attempts = "caja_job_attempts_total"
    merchant.receiver.wait_for_sync(
        lambda: (
            grew(recorded(), attempts, kind="webhook", result="succeeded") >= 6
            and grew(recorded(), attempts, kind="email", result="succeeded") >= 1
        ),
        timeout=15,
        what="the deliveries and the receipt recorded",
    )
    assert grew(recorded(), "caja_job_attempt_duration_seconds_count", kind="webhook") >= 6
