"""The cashier simulator's signer over plain HTTP: who may sign, what, and that it verifies."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from tests.conftest import AccountKeys, Server

DASHBOARD = "/_caja/dashboard"
CASHIER = "/_caja/cashier"
SIGN = f"{CASHIER}/sign"
LOOKUPS = "/network/v1/lookups"


@contextmanager
def signed_in(server: Server, key: str) -> Iterator[tuple[httpx.Client, str]]:
    """A dashboard session and the form token the cashier page carries."""
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post(f"{DASHBOARD}/login", data={"api_key": key})
        assert response.status_code == 303, response.text
        page = client.get(CASHIER)
        assert page.status_code == 200
        token = re.search(r'data-csrf="([0-9a-f]{32})"', page.text)
        assert token is not None
        yield client, token[1]


def sign(client: httpx.Client, csrf: str, payload: object) -> httpx.Response:
    return client.post(SIGN, content=json.dumps(payload), headers={"X-Caja-Csrf": csrf})


def lookup(client: httpx.Client, csrf: str, reference: str) -> httpx.Response:
    """Signs a lookup through the page's signer, then sends exactly that body to the network API."""
    body = json.dumps({"reference": reference, "store": "Soriana"})
    signed = sign(client, csrf, {"method": "POST", "path": LOOKUPS, "body": body})
    assert signed.status_code == 200, signed.text
    headers = signed.json()["headers"]
    return httpx.post(f"{client.base_url}{LOOKUPS}", content=body.encode(), headers=headers, timeout=10)


def test_the_page_and_the_signer_need_a_test_key_session(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    account = new_account("Caja sin sesión")
    with httpx.Client(base_url=server.base_url, timeout=10) as anonymous:
        page = anonymous.get(CASHIER)
        assert page.status_code == 303
        assert page.headers["location"] == f"{DASHBOARD}/login?next=%2F_caja%2Fcashier"
        payload = {"method": "POST", "path": LOOKUPS, "body": "{}"}
        assert anonymous.post(SIGN, json=payload).status_code == 401
    with httpx.Client(base_url=server.base_url, timeout=10, cookies={"caja_dashboard": "v1.nope"}) as forged:
        assert forged.post(SIGN, json=payload).status_code == 401
    with httpx.Client(base_url=server.base_url, timeout=10) as anonymous:
        # A live key never gets a session, so it never reaches the signer.
        refused = anonymous.post(f"{DASHBOARD}/login", data={"api_key": account.live_key})
        assert refused.status_code == 401 and "caja_dashboard" not in refused.cookies
        assert anonymous.post(SIGN, json=payload).status_code == 401


def test_signing_in_returns_to_the_page_that_asked_and_never_leaves_caja(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    account = new_account("Caja de regreso")
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        asked = client.get(CASHIER).headers["location"]
        form = client.get(asked)
        assert form.status_code == 200 and 'name="next" value="/_caja/cashier"' in form.text
        signed = client.post(f"{DASHBOARD}/login", data={"api_key": account.test_key, "next": CASHIER})
        assert signed.status_code == 303 and signed.headers["location"] == CASHIER
        assert client.get(CASHIER).status_code == 200
    # Anywhere but one of Caja's own pages is ignored: the events page, as without `next`.
    for elsewhere in ("https://evil.example/", "//evil.example/_caja/", "/\\evil.example", "/_caja//x", "x"):
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            signed = client.post(f"{DASHBOARD}/login", data={"api_key": account.test_key, "next": elsewhere})
            assert signed.headers["location"] == f"{DASHBOARD}/events", elsewhere
            form = client.get(f"{DASHBOARD}/login", params={"next": elsewhere})
            assert form.headers["location"] == f"{DASHBOARD}/events", elsewhere


def test_the_page_is_locked_down_and_holds_no_secret(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    account = new_account("Caja cerrada")
    with signed_in(server, account.test_key) as (client, _csrf):
        page = client.get(CASHIER)
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
        assert page.headers["cache-control"] == "no-store"
        assert "nsk_" not in page.text and account.test_key not in page.text
        assert '<option value="Farmacias del Ahorro">' in page.text
        assert 'href="/_caja/cashier"' in client.get(f"{DASHBOARD}/events").text  # in the nav
        script = client.get(f"{CASHIER}/assets/cashier.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert client.get(f"{CASHIER}/assets/..%2Fcashier.py").status_code == 404


def test_the_signer_refuses_what_the_terminal_never_sends(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    account = new_account("Caja estricta")
    with signed_in(server, account.test_key) as (client, csrf):
        good = {"method": "POST", "path": LOOKUPS, "body": "{}"}
        assert client.post(SIGN, json=good).status_code == 403  # no form token
        assert client.post(SIGN, json=good, headers={"X-Caja-Csrf": "0" * 32}).status_code == 403
        for bad in (
            {**good, "path": "/customers"},
            {**good, "path": "/network/v1/failure_codes"},
            {**good, "path": "/network/v1/lookups/../payments"},
            {**good, "method": "GET"},
            {**good, "body": {"reference": "1"}},
            {**good, "extra": True},
            ["POST", LOOKUPS, "{}"],
        ):
            refused = sign(client, csrf, bad)
            assert refused.status_code == 422, (bad, refused.text)
        not_json = client.post(SIGN, content=b"method=POST", headers={"X-Caja-Csrf": csrf})
        assert not_json.status_code == 400
        assert sign(client, csrf, good).status_code == 200


def test_signed_headers_verify_for_the_exact_body_only(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    account = new_account("Caja firmada")
    with signed_in(server, account.test_key) as (client, csrf):
        answer = lookup(client, csrf, "10000000000000000000")
        assert answer.status_code == 200, answer.text
        assert answer.json()["payable"] is False and answer.json()["failure_code"] == "01"

        body = json.dumps({"reference": "10000000000000000000", "store": "Soriana"})
        headers = sign(client, csrf, {"method": "POST", "path": LOOKUPS, "body": body}).json()["headers"]
        assert set(headers) == {"X-Caja-Network", "X-Caja-Timestamp", "X-Caja-Signature"}
        assert headers["X-Caja-Network"].startswith("net_")
        assert re.fullmatch(r"v1=[0-9a-f]{64}", headers["X-Caja-Signature"])
        tampered = body.replace("Soriana", "Oxxo").encode()
        moved = httpx.post(f"{server.base_url}/network/v1/payments", content=body.encode(), headers=headers)
        assert moved.status_code == 401
        altered = httpx.post(f"{server.base_url}{LOOKUPS}", content=tampered, headers=headers)
        assert altered.status_code == 401

        # Non-ASCII bodies are signed as the UTF-8 bytes the browser sends.
        accented = json.dumps({"reference": "1", "store": "Farmacia Peñoles"}, ensure_ascii=False)
        signed = sign(client, csrf, {"method": "POST", "path": LOOKUPS, "body": accented}).json()["headers"]
        sent = httpx.post(f"{server.base_url}{LOOKUPS}", content=accented.encode(), headers=signed)
        assert sent.status_code == 200, sent.text


def _reference_of(server: Server, account: AccountKeys) -> str:
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {account.test_key}"}, timeout=10
    ) as api:
        body = {"name": "Ana", "email": "ana@example.com", "payment_sources": [{"type": "cash_recurrent"}]}
        created = api.post("/customers", json=body)
        assert created.status_code == 200, created.text
        return str(created.json()["payment_sources"]["data"][0]["reference"])


def test_each_account_signs_for_its_own_sandbox_network(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    owner, stranger = new_account("Dueña de la referencia"), new_account("Otra tienda")
    reference = _reference_of(server, owner)
    with signed_in(server, owner.test_key) as (client, csrf):
        first = sign(client, csrf, {"method": "POST", "path": LOOKUPS, "body": "{}"}).json()["headers"]
        again = sign(client, csrf, {"method": "POST", "path": LOOKUPS, "body": "{}"}).json()["headers"]
        assert again["X-Caja-Network"] == first["X-Caja-Network"]  # made once, then reused
        # The owner's network sees the reference; with no synchronous webhook nobody approves it.
        assert lookup(client, csrf, reference).json()["failure_code"] == "19"
    with signed_in(server, stranger.test_key) as (client, csrf):
        other = sign(client, csrf, {"method": "POST", "path": LOOKUPS, "body": "{}"}).json()["headers"]
        assert other["X-Caja-Network"] != first["X-Caja-Network"]


def test_another_accounts_reference_does_not_exist_for_the_simulator(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    reference = _reference_of(server, new_account("Dueña"))
    with signed_in(server, new_account("Extraña").test_key) as (client, csrf):
        assert lookup(client, csrf, reference).json()["failure_code"] == "01"
