"""Racing stores and retries produce exactly the right number of charges (SQLite and PostgreSQL)."""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.cash.conftest import Merchant
from tests.conftest import Server
from tests.tools.network_client import NetworkClient


def _clients(server: Server, credentials: dict[str, Any], n: int) -> list[NetworkClient]:
    return [
        NetworkClient(server.base_url, credentials["id"], credentials["secret"], timeout=60) for _ in range(n)
    ]


def test_two_stores_paying_one_reference_at_once_make_two_charges(
    server: Server, merchant: Merchant, network_credentials: dict[str, Any]
) -> None:
    _, _, reference = merchant.reference()
    stores = ["7 Eleven", "Farmacias del Ahorro"]
    clients = _clients(server, network_credentials, 2)
    for client, store in zip(clients, stores, strict=True):
        client.lookup(reference, store=store)
    start = threading.Barrier(2)

    def pay(index: int) -> dict[str, Any]:
        start.wait()
        return clients[index].pay(reference, 12_300, f"pos-{secrets.token_hex(6)}", store=stores[index])

    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(pay, range(2)))
    finally:
        for client in clients:
            client.close()
    assert [a["status"] for a in answers] == ["paid", "paid"]
    assert answers[0]["authorization_code"] != answers[1]["authorization_code"]
    charges = merchant.api.get("/charges").json()["data"]
    assert sorted(c["payment_method"]["store_name"] for c in charges) == sorted(stores)
    assert len(merchant.api.get("/orders").json()["data"]) == 2


def test_fifty_concurrent_retries_of_one_payment_make_one_charge(
    server: Server, merchant: Merchant, network_credentials: dict[str, Any]
) -> None:
    _, _, reference = merchant.reference()
    clients = _clients(server, network_credentials, 50)
    clients[0].lookup(reference)
    transaction = f"pos-{secrets.token_hex(6)}"
    start = threading.Barrier(50)

    def pay(index: int) -> dict[str, Any]:
        start.wait()
        return clients[index].pay(reference, 45_600, transaction)

    try:
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(pay, range(50)))
    finally:
        for client in clients:
            client.close()
    assert all(a == answers[0] for a in answers), {a.get("status") for a in answers}
    assert answers[0]["status"] == "paid"
    charges = merchant.api.get("/charges").json()["data"]
    assert len(charges) == 1
    assert charges[0]["payment_method"]["auth_code"] == int(answers[0]["authorization_code"])
    assert len(merchant.api.get("/orders").json()["data"]) == 1
