"""Store calls waiting for the merchant hold no admission slot (caja.admission), on a real server.

``caja serve`` lets only a few store calls work on its event loop at once (``CAJA_STORE_CALL_SLOTS``,
2 by default), but a call gives its slot up while the merchant thinks: a merchant slow to answer
must never hold the other stores back.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.cash.conftest import Merchant
from tests.conftest import Server
from tests.tools.network_client import NetworkClient
from tests.tools.receiver import Received, Reply

# More stores at once than any number of slots a default would choose.
STORES = 8


def test_every_store_reaches_the_merchant_while_the_others_wait_for_its_answer(
    server: Server, merchant: Merchant, network_credentials: dict[str, Any]
) -> None:
    references = [merchant.reference()[2] for _ in range(STORES)]
    # The merchant answers nobody until all the stores' lookups are with it at once: with slots
    # held while waiting for it, the calls past the slots would never reach it, and every
    # lookup would end declined (19) when the barrier gives up.
    together = threading.Barrier(STORES, timeout=10)

    def answer_when_all_are_here(_request: Received) -> Reply:
        together.wait()
        return Reply(body=json.dumps({"payable": True, "min_amount": 5_000, "max_amount": 500_000}).encode())

    merchant.receiver.on(merchant.sync_path, answer_when_all_are_here)

    def lookup(n: int) -> dict[str, Any]:
        store = NetworkClient(server.base_url, network_credentials["id"], network_credentials["secret"])
        try:
            return store.lookup(references[n], store=f"Tienda {n}")
        finally:
            store.close()

    with ThreadPoolExecutor(STORES) as pool:
        answers = list(pool.map(lookup, range(STORES)))

    assert not together.broken
    assert [a["payable"] for a in answers] == [True] * STORES, answers
    assert len(merchant.approvals("inbound_payment.lookup")) == STORES
