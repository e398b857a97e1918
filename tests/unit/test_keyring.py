"""The keyring: sealing secrets at rest, RSA key pairs for Digest signatures, signing secrets."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from caja.delivery.keyring import (
    SealedSecretError,
    SecretBox,
    generate_rsa_keypair,
    new_signing_secret,
)


def test_sealed_values_open_to_the_original_and_never_contain_it() -> None:
    box = SecretBox(b"server secret")
    plaintext = "whsec_c2VjcmV0IHRoYXQgbXVzdCBub3QgbGVhaw=="
    token = box.seal(plaintext)
    assert token.startswith("v1.")
    assert plaintext not in token
    assert box.open(token) == plaintext
    # A random nonce per seal: the same value never seals to the same token twice.
    assert box.seal(plaintext) != token


def test_another_secret_cannot_open_and_a_previous_secret_still_can() -> None:
    old = SecretBox(b"old secret")
    token = old.seal("-----BEGIN PRIVATE KEY-----")
    with pytest.raises(SealedSecretError, match="CAJA_SECRET"):
        SecretBox(b"new secret").open(token)
    rotated = SecretBox(b"new secret", previous=[b"old secret"])
    assert rotated.open(token) == "-----BEGIN PRIVATE KEY-----"


@pytest.mark.parametrize("token", ["", "v2.AAAA", "v1.", "v1.@@@@", "plain text"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(SealedSecretError):
        SecretBox(b"s").open(token)


def test_a_tampered_token_is_refused() -> None:
    box = SecretBox(b"s")
    token = box.seal("value")
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    raw[-1] ^= 1
    with pytest.raises(SealedSecretError):
        box.open("v1." + base64.urlsafe_b64encode(bytes(raw)).decode())


def test_an_empty_server_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        SecretBox(b"")


def test_signing_secrets_follow_standard_webhooks() -> None:
    secret = new_signing_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert new_signing_secret() != secret


def test_rsa_key_pairs_are_2048_bit_pem_and_sign_verifiably() -> None:
    public_pem, private_pem = generate_rsa_keypair()
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    public = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(private, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey)
    assert private.key_size == 2048
    body = b'{"type":"webhook_ping"}'
    signature = private.sign(body, padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
