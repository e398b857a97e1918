"""The sandbox dashboard in chromium: sign in with a test key, read an event's delivery attempts
(made to a real local receiver), resend it and watch the new attempt appear, read a caught e-mail."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import cash_source
from tests.conftest import AccountKeys, Server
from tests.tools.receiver import Receiver, Reply, always

BASE = "/_caja/dashboard"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def account(new_account: Callable[[str], AccountKeys]) -> AccountKeys:
    return new_account("Tienda del Panel")


def api(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def sign_in(page: Page, server: Server, key: str) -> None:
    page.goto(f"{server.base_url}{BASE}")
    expect(page).to_have_url(re.compile(r"/_caja/dashboard/login$"))
    page.get_by_label("Llave privada de prueba").fill(key)
    page.get_by_role("button", name="Entrar").click()
    expect(page).to_have_url(re.compile(r"/_caja/dashboard/events$"))


def wait_until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_event_attempts_and_resend(
    page: Page, server: Server, account: AccountKeys, receiver: Receiver
) -> None:
    receiver.on("/hook", always(Reply(status=200, body=b'{"recibido": true}')))
    with api(server, account.test_key) as client:
        created = client.post("/webhooks", json={"url": receiver.url("/hook")})
        assert created.status_code == 200, created.text
        customer = client.post("/customers", json={"name": "Ana López", "email": "ana@example.com"}).json()
        [event] = client.get("/events", params={"type": "customer.created"}).json()["data"]
    wait_until(lambda: any(json.loads(r.body)["id"] == event["id"] for r in receiver.to("/hook")), "delivery")

    sign_in(page, server, account.test_key)
    cookies = page.context.cookies()
    [session] = [c for c in cookies if c["name"] == "caja_dashboard"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/_caja"
    assert account.test_key not in session["value"] and account.test_key not in page.url

    row = page.locator(f'tr.event-row[data-event-id="{event["id"]}"]')
    expect(row).to_contain_text("customer.created")
    row.get_by_role("link", name="customer.created").click()
    expect(page.locator("h1")).to_have_text("customer.created")
    expect(page.locator(".payload pre")).to_contain_text(customer["id"])

    delivery = page.locator(".delivery")
    expect(delivery).to_have_count(1)
    expect(delivery).to_contain_text(receiver.url("/hook"))
    attempt = delivery.locator("details.attempt")
    expect(attempt).to_have_count(1)
    expect(attempt.locator("summary")).to_contain_text("HTTP 200")
    request_headers = attempt.locator("table.headers").first
    for name in ("digest", "webhook-id", "webhook-signature", "content-type"):
        expect(request_headers).to_contain_text(name, ignore_case=True)
    expect(attempt.locator("pre.body").first).to_contain_text(event["id"])
    expect(attempt.locator("pre.response-body")).to_contain_text('"recibido": true')
    page.screenshot(path="/tmp/caja-dashboard-event.png", full_page=True)

    before = len(receiver.to("/hook"))
    delivery.get_by_role("button", name="Reenviar").click()
    expect(page.locator(".notice")).to_contain_text("Reenvío programado")
    # The page reloads itself while a delivery is pending; the new attempt shows up on its own.
    expect(page.locator(".delivery")).to_have_count(2)
    expect(page.locator("details.attempt")).to_have_count(2, timeout=20_000)
    expect(page.locator(".delivery").nth(1).locator("summary")).to_contain_text("HTTP 200")
    assert len(receiver.to("/hook")) == before + 1
    assert json.loads(receiver.to("/hook")[-1].body)["id"] == event["id"]


def test_a_synchronous_webhooks_approval_calls_and_answers(
    page: Page, server: Server, account: AccountKeys, receiver: Receiver
) -> None:
    receiver.on("/approve", always(Reply(status=200, body=b'{"payable": true, "min_amount": 5000}')))
    with api(server, account.test_key) as client:
        hook = client.post("/webhooks", json={"url": receiver.url("/approve"), "synchronous": True}).json()
        reference = cash_source(server, account.test_key)["reference"]
        paid = client.post(
            "/payment_test",
            json={"event_type": "inbound_payment.payment_attempt", "reference": reference, "amount": "12345"},
        )
        assert paid.json()["payment"]["status"] == "paid", paid.text
        receiver.on("/approve", always(Reply(status=500, body=b"caido")))
        client.post("/payment_test", json={"event_type": "inbound_payment.lookup", "reference": reference})
        log = f"/_caja/webhooks/{hook['id']}/approval_calls"
        wait_until(lambda: len(client.get(log).json()["data"]) == 3, "the approval log")

    sign_in(page, server, account.test_key)
    page.get_by_role("link", name="Aprobaciones").click()
    expect(page.locator("h1")).to_have_text("Aprobaciones")
    expect(page.locator("#approval-webhook")).to_contain_text(hook["id"])
    calls = page.locator("details.approval-call")
    expect(calls).to_have_count(3)
    failed, attempt, lookup = calls.nth(0), calls.nth(1), calls.nth(2)
    expect(failed.locator("summary")).to_contain_text("sin respuesta válida")
    expect(failed.locator("summary")).to_contain_text("HTTP 500")
    expect(attempt).to_have_attribute("data-type", "inbound_payment.payment_attempt")
    expect(attempt.locator("summary")).to_contain_text("$123.45 MXN")
    expect(lookup.locator("summary")).to_contain_text("aprobado desde $50.00 MXN")
    attempt.locator("summary").click()
    expect(attempt.locator("pre.body")).to_contain_text(reference)
    expect(attempt.locator("pre.response-body")).to_contain_text('"payable": true')
    for name in ("digest", "webhook-signature"):
        expect(attempt.locator("table.headers")).to_contain_text(name, ignore_case=True)
    page.screenshot(path="/tmp/caja-dashboard-approvals.png", full_page=True)


def test_caught_email_is_shown_with_its_html_sandboxed(
    page: Page, server: Server, account: AccountKeys
) -> None:
    to = "destinatario@example.com"
    with api(server, account.test_key) as client:
        assert client.post("/_caja/emails", json={"to": to}).status_code == 200
        wait_until(lambda: client.get("/_caja/emails").json()["data"], "the caught e-mail")
    sign_in(page, server, account.test_key)
    page.locator("header nav").get_by_role("link", name="Correos").click()
    row = page.locator("tr.email-row").first
    expect(row).to_contain_text(to)
    row.get_by_role("link", name="Correo de prueba de Tienda del Panel").click()
    expect(page.locator("#subject")).to_have_text("Correo de prueba de Tienda del Panel")
    expect(page.locator("pre.email-text")).to_contain_text("el envío de correos funciona")
    frame = page.frame_locator("iframe.email-html")
    expect(frame.locator("h1")).to_have_text("Correo de prueba")
    iframe = page.locator("iframe.email-html")
    assert iframe.get_attribute("sandbox") == ""
    page.screenshot(path="/tmp/caja-dashboard-email.png", full_page=True)

    # The iframe's document is inert: served with a sandbox CSP of its own.
    body = page.request.get(f"{server.base_url}{iframe.get_attribute('src')}")
    assert body.status == 200
    assert body.headers["content-security-policy"].startswith("sandbox")

    # The test form sends through the outbox, and the message appears in the list.
    page.locator("header nav").get_by_role("link", name="Correos").click()
    page.get_by_label("Destinatario").fill("otra@example.com")
    page.get_by_role("button", name="Enviar correo de prueba").click()
    expect(page.locator(".notice")).to_contain_text("otra@example.com")
    wait_until(lambda: _reload_has(page, "otra@example.com"), "the second e-mail")


def _reload_has(page: Page, text: str) -> bool:
    page.reload()
    return page.locator("tr.email-row", has_text=text).count() > 0


def test_live_keys_and_bad_keys_cannot_sign_in(page: Page, server: Server, account: AccountKeys) -> None:
    page.goto(f"{server.base_url}{BASE}/login")
    page.get_by_label("Llave privada de prueba").fill(account.live_key)
    page.get_by_role("button", name="Entrar").click()
    expect(page.locator(".error")).to_contain_text("solo acepta llaves de prueba")
    page.get_by_label("Llave privada de prueba").fill("key_noexiste1234567890")
    page.get_by_role("button", name="Entrar").click()
    expect(page.locator(".error")).to_contain_text("no es válida")
    assert not [c for c in page.context.cookies() if c["name"] == "caja_dashboard"]
    # Pages need a session (and the sign-in form comes back to them).
    page.goto(f"{server.base_url}{BASE}/events")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F_caja%2Fdashboard%2Fevents$"))


def test_sign_out(page: Page, server: Server, account: AccountKeys) -> None:
    sign_in(page, server, account.test_key)
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(f"{server.base_url}{BASE}/emails")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F_caja%2Fdashboard%2Femails$"))
