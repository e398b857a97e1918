"""Store networks (cash aggregators) and how their requests are signed.

A network holds an id (``net_...``) and a secret (``nsk_...``). Each request carries

    X-Caja-Network: net_...
    X-Caja-Timestamp: <epoch seconds>
    X-Caja-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<METHOD>.<path>.<body>")>

so a request cannot be altered, moved to another endpoint or replayed outside the tolerance
window (docs/network-api.md). The signature binds the exact body bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

NETWORK_ID_PREFIX = "net_"
SECRET_PREFIX = "nsk_"  # noqa: S105 (a prefix, not a secret)
SIGNATURE_VERSION = "v1"
TIMESTAMP_TOLERANCE = 300  # seconds either side of the server's clock
MISMATCH = "the signature does not match the request"

HEADER_NETWORK = "x-caja-network"
HEADER_TIMESTAMP = "x-caja-timestamp"
HEADER_SIGNATURE = "x-caja-signature"


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    name: str
    livemode: bool
    created_at: int
    revoked_at: int | None = None
    # An account's own sandbox network sees that account's test references only.
    account_id: str | None = None
    # Set by a rotation: until then the secret before it is accepted too.
    previous_secret_expires_at: int | None = None


def new_secret() -> str:
    return f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"


def signed_payload(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    return b".".join((timestamp.encode("ascii"), method.upper().encode("ascii"), path.encode("utf-8"), body))


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), signed_payload(timestamp, method, path, body), hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def verify(
    secret: str, timestamp: str, signature: str, method: str, path: str, body: bytes, now: int
) -> str | None:
    """None when the request is genuine and fresh; otherwise why not (for the 401's debug message)."""
    if not timestamp.isdigit():
        return "X-Caja-Timestamp must be epoch seconds"
    if abs(int(timestamp) - now) > TIMESTAMP_TOLERANCE:
        return f"X-Caja-Timestamp is more than {TIMESTAMP_TOLERANCE} s away from the server's clock"
    expected = sign(secret, timestamp, method, path, body)
    # A header may list several signatures (a network rolling its secret): any match counts.
    for candidate in signature.split():
        if hmac.compare_digest(candidate.encode("ascii", "replace"), expected.encode("ascii")):
            return None
    return MISMATCH
