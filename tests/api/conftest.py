"""HTTP-level fixtures: plain httpx clients for any key, and a fresh, empty merchant account."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import AccountKeys, Server

ACCEPT = "application/vnd.conekta-v2.3.0+json"


@pytest.fixture
def client_for(server: Server) -> Iterator[Callable[[str], httpx.Client]]:
    """``client_for(key)``: an httpx client that authenticates with ``key`` (Bearer)."""
    clients: list[httpx.Client] = []

    def make(key: str) -> httpx.Client:
        client = httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {key}", "Accept": ACCEPT},
            timeout=15.0,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def account(new_account: Callable[[str], AccountKeys]) -> AccountKeys:
    """A merchant account of its own, so counts and lists see only this test's objects."""
    return new_account("Comercio de prueba")


@pytest.fixture
def own(account: AccountKeys, client_for: Callable[[str], httpx.Client]) -> httpx.Client:
    """A client on the test key of a fresh account."""
    return client_for(account.test_key)
