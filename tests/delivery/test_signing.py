"""Signatures made by Caja, checked by independent code (``cryptography``, ``standardwebhooks``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from cryptography.exceptions import InvalidSignature
from standardwebhooks.webhooks import WebhookVerificationError

from caja.delivery.keyring import new_signing_secret
from caja.delivery.signing import SigningKey, load_private_key, signature_headers
from tests.delivery.conftest import keypair
from tests.delivery.verify import verify_both, verify_digest, verify_standard

BODY = b'{"id":"5b438f82583eb80d50b4652c","object":"event","type":"charge.paid","data":{"amount":1500}}'


def headers_for(body: bytes, secret: str, msg_id: str = "5b438f82583eb80d50b4652c") -> dict[str, str]:
    _public, private = keypair()
    key = SigningKey("key1", load_private_key(private))
    made = signature_headers(body, msg_id=msg_id, timestamp=int(time.time()), secret=secret, key=key)
    return {name.lower(): value for name, value in made.items()}


def test_both_signatures_verify_independently() -> None:
    secret = new_signing_secret()
    headers = headers_for(BODY, secret)
    public, _private = keypair()
    verify_both(BODY, headers, public, secret)
    assert headers["webhook-id"] == "5b438f82583eb80d50b4652c"
    assert headers["webhook-signature"].startswith("v1,")


def test_the_hmac_is_the_one_the_standard_defines() -> None:
    """Recomputed by hand from the spec: HMAC-SHA256 of ``{id}.{timestamp}.{body}``, base64."""
    secret = new_signing_secret()
    headers = headers_for(BODY, secret, msg_id="evt_1")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"evt_1.{headers['webhook-timestamp']}.".encode() + BODY
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"


def test_a_changed_body_fails_both() -> None:
    secret = new_signing_secret()
    headers = headers_for(BODY, secret)
    public, _private = keypair()
    tampered = BODY.replace(b"1500", b"1501")
    with pytest.raises(InvalidSignature):
        verify_digest(tampered, headers, public)
    with pytest.raises(WebhookVerificationError):
        verify_standard(tampered, headers, secret)


def test_another_secret_or_key_fails() -> None:
    headers = headers_for(BODY, new_signing_secret())
    with pytest.raises(WebhookVerificationError):
        verify_standard(BODY, headers, new_signing_secret())
    from caja.delivery.keyring import generate_rsa_keypair

    other_public, _ = generate_rsa_keypair()
    with pytest.raises(InvalidSignature):
        verify_digest(BODY, headers, other_public)


def test_an_old_timestamp_is_refused_by_receivers() -> None:
    secret = new_signing_secret()
    _public, private = keypair()
    key = SigningKey("key1", load_private_key(private))
    stale = signature_headers(BODY, msg_id="evt_1", timestamp=int(time.time()) - 3600, secret=secret, key=key)
    with pytest.raises(WebhookVerificationError):
        verify_standard(BODY, stale, secret)


def test_without_a_webhook_key_only_standard_headers_are_sent() -> None:
    secret = new_signing_secret()
    made = signature_headers(BODY, msg_id="evt_1", timestamp=int(time.time()), secret=secret, key=None)
    assert "Digest" not in made
    verify_standard(BODY, made, secret)
