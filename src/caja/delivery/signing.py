"""Signing a delivery's exact body bytes, two ways.

- Conekta's ``Digest`` header: base64 of an RSASSA-PKCS1-v1_5 / SHA-256 signature with the
  tenant's active webhook key (the merchant verifies it with the public key from ``/webhook_keys``).
- Standard Webhooks: ``webhook-id`` (the event id, stable across retries, for deduplication),
  ``webhook-timestamp`` (epoch seconds of this attempt, for replay protection) and
  ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` keyed with the
  webhook's ``whsec_`` secret), produced by the ``standardwebhooks`` package.
"""

from __future__ import annotations

import asyncio
import base64
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from standardwebhooks import Webhook

DIGEST_HEADER = "Digest"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A tenant's webhook key, ready to sign: its id and the loaded RSA private key."""

    id: str
    private_key: rsa.RSAPrivateKey


@lru_cache(maxsize=256)
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Parse a PEM private key once (parsing costs about as much as a signature)."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("a webhook key must be an RSA key")
    return key


def digest(body: bytes, key: rsa.RSAPrivateKey) -> str:
    """The ``Digest`` header value: base64(RSASSA-PKCS1-v1_5(SHA-256(body)))."""
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


@lru_cache(maxsize=1024)
def _webhook(secret: str) -> Webhook:
    return Webhook(secret)


def standard_webhooks_headers(msg_id: str, timestamp: int, body: bytes, secret: str) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for ``body``."""
    signature = _webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def signature_headers(
    body: bytes, *, msg_id: str, timestamp: int, secret: str | None, key: SigningKey | None
) -> dict[str, str]:
    """Every signature header a delivery carries: those it has a secret or a key for."""
    headers: dict[str, str] = {}
    if key is not None:
        headers[DIGEST_HEADER] = digest(body, key.private_key)
    if secret:
        headers.update(standard_webhooks_headers(msg_id, timestamp, body, secret))
    return headers


# More threads than this would only queue behind the event loop that feeds them.
MAX_SIGNING_THREADS = 4


def default_signing_threads() -> int:
    """One signing thread per core this process may use beyond the event loop's, up to four."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(0, min(usable - 1, MAX_SIGNING_THREADS))


class SignatureWorkers:
    """Where a delivery's signatures are computed: on the event loop, or in threads of their own.

    An RSA-2048 signature is 0.3-1 ms of CPU, a large share of a synchronous approval call and of
    a webhook delivery. cryptography releases the GIL while it signs, so on a second core it runs
    beside the event loop, which meanwhile serves other requests. With no core to spare the
    hand-off would only add two thread switches, so ``threads=0`` signs in place.
    """

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="caja-sign") if threads > 0 else None

    async def headers(
        self, body: bytes, *, msg_id: str, timestamp: int, secret: str | None, key: SigningKey | None
    ) -> dict[str, str]:
        sign = partial(signature_headers, body, msg_id=msg_id, timestamp=timestamp, secret=secret, key=key)
        if self._pool is None or key is None:  # the HMAC alone costs microseconds
            return sign()
        return await asyncio.get_running_loop().run_in_executor(self._pool, sign)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
