"""A merchant with a synchronous approval webhook and an ordinary one, and store networks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import AccountKeys, Server
from tests.tools.network_client import NetworkClient
from tests.tools.receiver import Receiver, Reply, always

ACCEPT = "application/vnd.conekta-v2.1.0+json"


@dataclass
class Merchant:
    keys: AccountKeys
    api: httpx.Client
    receiver: Receiver
    sync_path: str
    events_path: str

    def approve(self, reply: dict[str, Any] | Reply) -> None:
        """What the synchronous webhook answers from now on."""
        answer = reply if isinstance(reply, Reply) else Reply(body=json.dumps(reply).encode())
        self.receiver.on(self.sync_path, always(answer))

    def approvals(self, event_type: str | None = None) -> list[dict[str, Any]]:
        calls = [json.loads(r.body) for r in self.receiver.to(self.sync_path)]
        return [c for c in calls if event_type is None or c["type"] == event_type]

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        calls = [json.loads(r.body) for r in self.receiver.to(self.events_path)]
        return [c for c in calls if event_type is None or c["type"] == event_type]

    def reference(self, **customer: Any) -> tuple[str, str, str]:
        """A new customer with one cash_recurrent source: (customer id, source id, reference)."""
        body = {
            "name": "Jorge Pérez",
            "email": "jorge@example.com",
            "phone": "8181818181",
            "payment_sources": [{"type": "cash_recurrent"}],
            **customer,
        }
        created = self.api.post("/customers", json=body)
        assert created.status_code == 200, created.text
        source = created.json()["payment_sources"]["data"][0]
        return created.json()["id"], source["id"], source["reference"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()


def _merchant(server: Server, receiver: Receiver, name: str) -> Merchant:
    data = json.loads(server.cli("accounts", "create", "--name", name, "--json"))
    keys = AccountKeys(id=data["id"], test_key=data["test_private_key"], live_key=data["live_private_key"])
    api = httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {keys.test_key}", "Accept": ACCEPT},
        timeout=15.0,
    )
    sync_path, events_path = f"/sync/{keys.id}", f"/events/{keys.id}"
    merchant = Merchant(keys, api, receiver, sync_path, events_path)
    merchant.approve({"payable": True, "min_amount": 5_000, "max_amount": 500_000})
    for url, synchronous in ((receiver.url(sync_path), True), (receiver.url(events_path), False)):
        made = api.post("/webhooks", json={"url": url, "synchronous": synchronous})
        assert made.status_code == 200, made.text
    return merchant


@pytest.fixture
def new_merchant(server: Server, receiver: Receiver) -> Iterator[Callable[[str], Merchant]]:
    made: list[Merchant] = []

    def create(name: str = "Tienda de Don Pepe") -> Merchant:
        merchant = _merchant(server, receiver, name)
        made.append(merchant)
        return merchant

    yield create
    for merchant in made:
        merchant.api.close()


@pytest.fixture
def merchant(new_merchant: Callable[[str], Merchant]) -> Merchant:
    return new_merchant("Tienda de Don Pepe")


@pytest.fixture(scope="module")
def network_credentials(server: Server) -> dict[str, Any]:
    return dict(json.loads(server.cli("networks", "create", "--name", "Red de prueba", "--test", "--json")))


@pytest.fixture
def network(server: Server, network_credentials: dict[str, Any]) -> Iterator[NetworkClient]:
    client = NetworkClient(server.base_url, network_credentials["id"], network_credentials["secret"])
    try:
        yield client
    finally:
        client.close()
