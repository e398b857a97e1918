"""Independent signature checks: ``cryptography`` for Conekta's Digest, ``standardwebhooks`` for the rest.

Nothing here imports Caja: a receiver's view of a delivery.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from standardwebhooks import Webhook


def verify_digest(body: bytes, headers: Mapping[str, str], public_pem: str) -> None:
    """Raises ``cryptography.exceptions.InvalidSignature`` unless ``Digest`` signs ``body``."""
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    signature = base64.b64decode(headers["digest"], validate=True)
    key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())


def verify_standard(body: bytes, headers: Mapping[str, str], secret: str) -> object:
    """Raises ``standardwebhooks.webhooks.WebhookVerificationError`` unless the headers sign ``body``."""
    return Webhook(secret).verify(body, dict(headers))


def verify_both(body: bytes, headers: Mapping[str, str], public_pem: str, secret: str) -> None:
    verify_digest(body, headers, public_pem)
    verify_standard(body, headers, secret)
    # The timestamp is this attempt's, in epoch seconds.
    sent = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    assert abs(sent - datetime.now(tz=UTC)) < timedelta(minutes=5), (sent, time.time())
