"""A real browser: Debian's chromium driven by Playwright (never a downloaded browser build)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import Server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    # Per test, not per session: Playwright's sync API keeps an event loop running in this thread
    # while it is open, which would stop every later asyncio test (and asyncio.run) in the session.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="es-MX")
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def cash_source(server: Server, key: str) -> dict[str, Any]:
    """A new customer's one cash_recurrent source, with its ``customer_id``."""
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as api:
        response = api.post(
            "/customers",
            json={
                "name": "Ana López",
                "email": "ana@example.com",
                "payment_sources": [{"type": "cash_recurrent"}],
            },
        )
        assert response.status_code == 200, response.text
        customer = response.json()
        [source] = customer["payment_sources"]["data"]
        return {**source, "customer_id": customer["id"]}
