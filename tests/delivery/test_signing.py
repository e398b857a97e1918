"""Signatures made by Caja, checked by independent code (``cryptography``, ``standardwebhooks``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import threading
import time
from typing import cast

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from standardwebhooks.webhooks import WebhookVerificationError

from caja.config import DeliverySettings
from caja.delivery.keyring import new_signing_secret
from caja.delivery.signing import SignatureWorkers, SigningKey, load_private_key, signature_headers
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


class ThreadNoting:
    """A real RSA key that notes which thread each signature was computed on."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        self.threads: list[str] = []

    def sign(self, data: bytes, pad: padding.AsymmetricPadding, algorithm: hashes.HashAlgorithm) -> bytes:
        self.threads.append(threading.current_thread().name)
        return self._key.sign(data, pad, algorithm)


async def sign_with(threads: int, secret: str) -> tuple[dict[str, str], list[str]]:
    _public, private = keypair()
    noting = ThreadNoting(load_private_key(private))
    workers = SignatureWorkers(threads)
    try:
        key = SigningKey("key1", cast(rsa.RSAPrivateKey, noting))
        made = await workers.headers(BODY, msg_id="evt_1", timestamp=int(time.time()), secret=secret, key=key)
    finally:
        workers.close()
    return {name.lower(): value for name, value in made.items()}, noting.threads


async def test_signing_threads_sign_off_the_event_loop_and_the_signatures_verify() -> None:
    secret = new_signing_secret()
    headers, threads = await sign_with(2, secret)
    public, _private = keypair()
    verify_both(BODY, headers, public, secret)
    assert len(threads) == 1 and threads[0].startswith("caja-sign")
    assert threads[0] != threading.current_thread().name


async def test_without_signing_threads_the_event_loop_signs() -> None:
    secret = new_signing_secret()
    headers, threads = await sign_with(0, secret)
    public, _private = keypair()
    verify_both(BODY, headers, public, secret)
    assert threads == [threading.current_thread().name]


@pytest.mark.parametrize(("cores", "expected"), [("0", 0), ("0,1", 1)])
def test_the_default_is_one_signing_thread_per_spare_core(cores: str, expected: int) -> None:
    if len(os.sched_getaffinity(0)) < len(cores.split(",")):
        pytest.skip(f"this machine has fewer cores than {cores}")
    code = "from caja.delivery.signing import default_signing_threads as d; print(d())"
    out = subprocess.run(
        ["taskset", "-c", cores, sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == expected


def test_signing_threads_setting() -> None:
    assert DeliverySettings.from_env({}).signing_threads is None
    assert DeliverySettings.from_env({"CAJA_SIGNING_THREADS": "auto"}).signing_threads is None
    assert DeliverySettings.from_env({"CAJA_SIGNING_THREADS": "3"}).signing_threads == 3
    assert DeliverySettings.from_env({"CAJA_SIGNING_THREADS": "0"}).signing_threads == 0
    with pytest.raises(ValueError, match="CAJA_SIGNING_THREADS"):
        DeliverySettings.from_env({"CAJA_SIGNING_THREADS": "-1"})
