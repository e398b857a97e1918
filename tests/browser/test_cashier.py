"""The cashier simulator in chromium, against a real server (both databases) and a merchant whose
synchronous webhook (a real local receiver) approves: look up, pay, reverse, declines, a double
click and a lost answer, checked through the merchant's own API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.cash.conftest import Merchant, _merchant
from tests.conftest import Server
from tests.tools.receiver import Receiver, Reply

DASHBOARD = "/_caja/dashboard"
PAYMENTS = "/network/v1/payments"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def merchant(server: Server, receiver: Receiver) -> Iterator[Merchant]:
    # Approves {"payable": true, "min_amount": 5000, "max_amount": 500000} on its synchronous webhook.
    made = _merchant(server, receiver, "Abarrotes La Caja")
    try:
        yield made
    finally:
        made.api.close()


def open_cashier(page: Page, server: Server, key: str) -> None:
    page.goto(f"{server.base_url}{DASHBOARD}/login")
    page.get_by_label("Llave privada de prueba").fill(key)
    page.get_by_role("button", name="Entrar").click()
    expect(page).to_have_url(re.compile(r"/_caja/dashboard/events$"))
    page.get_by_role("link", name="Simulador de caja").click()
    expect(page).to_have_url(re.compile(r"/_caja/cashier$"))
    expect(page.get_by_role("heading", name="Simulador de caja")).to_be_visible()


def test_opening_the_cashier_first_signs_in_and_comes_back(
    page: Page, server: Server, merchant: Merchant
) -> None:
    page.goto(f"{server.base_url}/_caja/cashier")
    expect(page).to_have_url(re.compile(r"/_caja/dashboard/login\?next="))
    page.get_by_label("Llave privada de prueba").fill(merchant.keys.test_key)
    page.get_by_role("button", name="Entrar").click()
    expect(page).to_have_url(re.compile(r"/_caja/cashier$"))
    expect(page.get_by_role("heading", name="Simulador de caja")).to_be_visible()


def orders(merchant: Merchant) -> list[dict[str, Any]]:
    response = merchant.api.get("/orders")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def payment_requests(page: Page) -> list[dict[str, Any]]:
    """Every payment the page sends to the network API, as sent."""
    sent: list[dict[str, Any]] = []

    def seen(request: Request) -> None:
        if request.url.endswith(PAYMENTS):
            sent.append(json.loads(request.post_data or "{}"))

    page.on("request", seen)
    return sent


def test_look_up_pay_and_reverse(page: Page, server: Server, merchant: Merchant) -> None:
    customer_id, _, reference = merchant.reference()
    open_cashier(page, server, merchant.keys.test_key)

    page.get_by_label("Tienda").select_option("Farmacias del Ahorro")
    # Pasted as printed on the slip, in groups of four: the page strips the spaces.
    page.get_by_label("Referencia").fill(" ".join(reference[i : i + 4] for i in range(0, 20, 4)))
    page.get_by_role("button", name="Consultar").click()
    lookup = page.locator("#lookup-result")
    expect(lookup).to_contain_text("Referencia pagable")
    expect(lookup).to_contain_text("$50.00 – $5,000.00")
    expect(lookup).to_contain_text("Jorge Pérez")
    expect(page.get_by_label("Referencia")).to_have_value(reference)
    [asked] = merchant.approvals("inbound_payment.lookup")
    assert asked["data"]["object"]["payment_method"]["reference"] == reference

    sent = payment_requests(page)
    page.get_by_label("Monto (pesos)").fill("123.45")
    page.get_by_role("button", name="Cobrar").click()
    shown = page.locator("#ticket-auth")
    expect(shown).to_have_text(re.compile(r"^[0-9]{8}$"))
    code = shown.inner_text()
    ticket = page.locator("#ticket")
    expect(ticket).to_contain_text("Pagado")
    expect(ticket).to_contain_text("$123.45 MXN")
    expect(page.locator("#ticket-store")).to_have_text("Farmacias del Ahorro")
    expect(page.locator("#ticket-transaction")).to_have_text(re.compile(r"^sim-[0-9a-f]{24}$"))
    [payment] = sent
    assert payment["amount"] == 12_345 and payment["reference"] == reference
    assert payment["transaction_id"] == page.locator("#ticket-transaction").inner_text()
    assert payment["lookup_id"].startswith("lkp_")

    [order] = orders(merchant)
    assert order["payment_status"] == "paid" and order["amount"] == 12_345
    assert order["customer_info"]["customer_id"] == customer_id
    [charge] = order["charges"]["data"]
    assert charge["status"] == "paid"
    assert charge["payment_method"]["auth_code"] == int(code)
    assert charge["payment_method"]["store_name"] == "Farmacias del Ahorro"

    # The last payment's code is ready to reverse.
    expect(page.get_by_label("Autorización a reversar")).to_have_value(code)
    page.get_by_role("button", name="Reversar").click()
    expect(page.locator("#reverse-result")).to_contain_text("Pago reversado")
    expect(page.locator("#ticket-status")).to_have_text("Reversado")
    [order] = orders(merchant)
    assert order["payment_status"] == "reversed"
    assert order["charges"]["data"][0]["status"] == "reversed"

    # An unknown code is refused with the network API's own message.
    page.get_by_label("Autorización a reversar").fill("00000001")
    page.get_by_role("button", name="Reversar").click()
    expect(page.locator("#reverse-result")).to_contain_text("Reversa rechazada")


def test_declines_show_their_code_and_description(page: Page, server: Server, merchant: Merchant) -> None:
    _, _, reference = merchant.reference()
    open_cashier(page, server, merchant.keys.test_key)

    page.get_by_label("Referencia").fill("10000000000000000000")
    page.get_by_role("button", name="Consultar").click()
    lookup = page.locator("#lookup-result")
    expect(lookup.locator(".failure-code")).to_have_text("01")
    expect(lookup).to_contain_text("Referencia no encontrada")

    # Below the merchant's range: declined by the network API, no order.
    page.get_by_label("Referencia").fill(reference)
    page.get_by_label("Monto (pesos)").fill("10")
    page.get_by_role("button", name="Cobrar").click()
    paid = page.locator("#pay-result")
    expect(paid.locator(".failure-code")).to_have_text("35")
    expect(paid).to_contain_text("Monto fuera del rango permitido")
    expect(page.locator("#ticket-status")).to_contain_text("Rechazado 35")
    expect(page.locator("#ticket-auth-block")).to_be_hidden()

    # Not a peso amount: refused in the page, nothing sent.
    sent = payment_requests(page)
    page.get_by_label("Monto (pesos)").fill("12.345")
    page.get_by_role("button", name="Cobrar").click()
    expect(paid).to_contain_text("Monto inválido")
    assert sent == []
    assert orders(merchant) == []


def test_a_double_click_on_cobrar_pays_once(page: Page, server: Server, merchant: Merchant) -> None:
    _, _, reference = merchant.reference()
    # A slow merchant keeps the first payment in flight while the second click lands.
    merchant.approve(Reply(body=b'{"payable": true, "min_amount": 5000, "max_amount": 500000}', delay=0.5))
    open_cashier(page, server, merchant.keys.test_key)
    sent = payment_requests(page)
    page.get_by_label("Referencia").fill(reference)
    page.get_by_label("Monto (pesos)").fill("200")
    page.get_by_role("button", name="Cobrar").dblclick()
    expect(page.locator("#ticket-auth")).to_have_text(re.compile(r"^[0-9]{8}$"))
    expect(page.get_by_role("button", name="Cobrar")).to_be_enabled()
    assert len(sent) == 1
    [order] = orders(merchant)
    assert order["amount"] == 20_000 and order["payment_status"] == "paid"


def test_a_lost_answer_is_retried_with_the_same_transaction(
    page: Page, server: Server, merchant: Merchant
) -> None:
    _, _, reference = merchant.reference()
    open_cashier(page, server, merchant.keys.test_key)
    taken: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        if taken:
            route.continue_()
            return
        answer = route.fetch()  # the server takes the payment...
        taken.append(answer.json()["authorization_code"])
        route.abort("connectionreset")  # ...but the terminal never hears back

    page.route(f"**{PAYMENTS}", lose_the_first_answer)
    sent = payment_requests(page)
    page.get_by_label("Referencia").fill(reference)
    page.get_by_label("Monto (pesos)").fill("1,234.56")
    page.get_by_role("button", name="Cobrar").click()
    expect(page.locator("#pay-result")).to_contain_text("Sin respuesta")
    page.get_by_role("button", name="Cobrar").click()
    expect(page.locator("#ticket-auth")).to_have_text(taken[0])
    assert len(sent) == 2 and sent[0]["transaction_id"] == sent[1]["transaction_id"]
    [order] = orders(merchant)
    assert order["amount"] == 123_456

    # A new payment after an answer is a new transaction.
    page.get_by_label("Monto (pesos)").fill("50")
    page.get_by_role("button", name="Cobrar").click()
    expect(page.locator("#ticket-amount")).to_have_text("$50.00 MXN")
    assert len(sent) == 3 and sent[2]["transaction_id"] != sent[0]["transaction_id"]
    assert len(orders(merchant)) == 2


def test_pesos_become_exact_centavos(page: Page, server: Server, merchant: Merchant) -> None:
    open_cashier(page, server, merchant.keys.test_key)
    cases = {
        "0.29": 29,  # 0.29 * 100 is 28.999999999999996 in floating point
        "19.99": 1_999,
        "123.45": 12_345,
        "1,234.56": 123_456,
        "$5,000 MXN": 500_000,
        "0.1": 10,
        "007": 700,
        "12.345": None,
        "1,23": None,
        "-5": None,
        "1e3": None,
        "": None,
    }
    parsed = page.evaluate("(cases) => cases.map((c) => window.CajaCashier.parsePesos(c))", list(cases))
    assert dict(zip(cases, parsed, strict=True)) == cases
    shown = page.evaluate("[5, 12345, 123456789].map((c) => window.CajaCashier.formatCentavos(c))")
    assert shown == ["$0.05", "$123.45", "$1,234,567.89"]
