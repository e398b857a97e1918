"""The dashboard's protections, over plain HTTP: form tokens, headers, and no key in the log."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.api.test_log_secrets import assert_no_secret
from tests.conftest import BACKENDS, AccountKeys, Server
from tests.mail.conftest import start_server  # noqa: F401 - fixture

BASE = "/_caja/dashboard"


@contextmanager
def signed_in(server: Server, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post(f"{BASE}/login", data={"api_key": key})
        assert response.status_code == 303 and response.headers["location"] == f"{BASE}/events"
        yield client


def test_pages_are_locked_down(server: Server, new_account: Callable[[str], AccountKeys]) -> None:
    account = new_account("Tienda segura")
    with signed_in(server, account.test_key) as client:
        page = client.get(f"{BASE}/events")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert page.headers["cache-control"] == "no-store"
        assert account.test_key not in page.text
        cookie = page.request.headers["cookie"]
        assert account.test_key not in cookie

        # A form post without the page's token is refused.
        forged = client.post(f"{BASE}/emails/test", data={"to": "a@example.com"})
        assert forged.status_code == 403
        token = re.search(r'name="csrf" value="([0-9a-f]{32})"', page.text)
        assert token is not None
        sent = client.post(f"{BASE}/emails/test", data={"to": "a@example.com", "csrf": token[1]})
        assert sent.status_code == 303

    # A tampered cookie is no session.
    sealed = cookie.split("=", 1)[1]
    tampered = sealed[:-6] + ("AAAAAA" if not sealed.endswith("AAAAAA") else "BBBBBB")
    with httpx.Client(base_url=server.base_url, cookies={"caja_dashboard": tampered}) as other:
        location = other.get(f"{BASE}/events").headers.get("location")
        assert location == f"{BASE}/login?next=%2F_caja%2Fdashboard%2Fevents"
    with httpx.Client(base_url=server.base_url, cookies={"caja_dashboard": sealed}) as same:
        assert same.get(f"{BASE}/events").status_code == 200


def test_another_accounts_event_is_not_shown(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    first, second = new_account("Uno"), new_account("Dos")
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {first.test_key}"}) as api:
        api.post("/customers", json={"name": "Ana", "email": "ana@example.com"})
        [event] = api.get("/events").json()["data"]
    with signed_in(server, second.test_key) as client:
        assert client.get(f"{BASE}/events/{event['id']}").status_code == 404
        assert event["id"] not in client.get(f"{BASE}/events").text


def test_another_accounts_approval_calls_are_not_shown(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> None:
    first, second = new_account("Uno"), new_account("Dos")
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {first.test_key}"}) as api:
        url = "http://127.0.0.1:9/privado-de-uno"
        hook = api.post("/webhooks", json={"url": url, "synchronous": True}).json()
    with signed_in(server, second.test_key) as client:
        page = client.get(f"{BASE}/approvals", params={"webhook": hook["id"]})
        assert page.status_code == 200
        assert hook["id"] not in page.text and url not in page.text
        assert "no tiene webhooks sincrónicos" in page.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_key_reaches_the_log(backend: str, start_server: Callable[..., Server]) -> None:  # noqa: F811
    server = start_server(backend, {"CAJA_LOG_LEVEL": "debug"})
    wrong = "key_thisIsNotAKeyOfAnyAccount0000"
    with signed_in(server, server.api_key) as client:
        assert client.get(f"{BASE}/events").status_code == 200
        assert client.get(f"{BASE}/emails").status_code == 200
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert client.post(f"{BASE}/login", data={"api_key": wrong}).status_code == 401
    with httpx.Client(base_url=server.base_url, timeout=10, cookies={"caja_dashboard": wrong}) as client:
        assert client.get(f"{BASE}/events").status_code == 303
    log = server.log_path.read_text()
    assert "dispatcher started" in log  # the log was written at debug level
    assert_no_secret(log, server.api_key, wrong)
