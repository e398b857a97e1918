"""A store network's client for the network API, signing requests with its own HMAC code.

Written from the protocol in docs/network-api.md, not with Caja's signer, so a test proves the
protocol a real aggregator would implement.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx


class NetworkClient:
    def __init__(self, base_url: str, network_id: str, secret: str, *, timeout: float = 15.0) -> None:
        self.network_id = network_id
        self.secret = secret
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def headers(self, method: str, path: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        message = b".".join([stamp.encode(), method.encode(), path.encode(), body])
        digest = hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()
        return {
            "X-Caja-Network": self.network_id,
            "X-Caja-Timestamp": stamp,
            "X-Caja-Signature": f"v1={digest}",
            "Content-Type": "application/json",
        }

    def post(self, path: str, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps(payload).encode()
        return self.http.post(path, content=body, headers=self.headers("POST", path, body))

    def lookup(self, reference: str, store: str = "7 Eleven", **extra: Any) -> dict[str, Any]:
        response = self.post("/network/v1/lookups", {"reference": reference, "store": store, **extra})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def pay(
        self, reference: str, amount: int, transaction_id: str, store: str = "7 Eleven", **extra: Any
    ) -> dict[str, Any]:
        payload = {
            "reference": reference,
            "amount": amount,
            "store": store,
            "transaction_id": transaction_id,
            **extra,
        }
        response = self.post("/network/v1/payments", payload)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def reverse(self, authorization_code: str) -> httpx.Response:
        return self.post("/network/v1/reversals", {"authorization_code": authorization_code})
