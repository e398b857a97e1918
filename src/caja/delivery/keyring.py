"""Secrets at rest and webhook keys: sealing with the server secret, RSA key pairs, signing secrets.

Two things Caja must keep but never show in clear in its database: the private keys of webhook
keys (which sign every delivery's ``Digest``) and the Standard Webhooks signing secret of each
webhook. Both are sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the server
secret: ``CAJA_SECRET`` when the operator sets it, otherwise a random secret Caja generates and
keeps in the ``server_secrets`` table. The generated one is weaker protection: whoever reads the
database also reads the key, so it only guards against leaks of single columns or exports.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from caja.domain.clock import Clock
from caja.store.uow import UnitOfWorkFactory

RSA_KEY_BITS = 2048
SIGNING_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SIGNING_SECRET_BYTES = 24
GENERATED_SECRET_NAME = "secret_box"  # noqa: S105 - the row name
TOKEN_VERSION = "v1"  # noqa: S105 - a format tag
_NONCE_BYTES = 12
_HKDF_INFO = b"caja secret box v1"


class SealedSecretError(Exception):
    """A sealed value could not be opened: damaged, or sealed under another server secret."""


def generate_rsa_keypair() -> tuple[str, str]:
    """A fresh 2048-bit RSA key pair: (PEM SubjectPublicKeyInfo public key, PEM PKCS#8 private key).

    Takes tens of milliseconds of CPU: call it off the event loop (``asyncio.to_thread``).
    """
    private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return public_pem.decode("ascii"), private_pem.decode("ascii")


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 24 random bytes."""
    return SIGNING_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SIGNING_SECRET_BYTES)).decode("ascii")


log = structlog.get_logger("caja.delivery.keyring")


def _derive(secret: bytes) -> AESGCM:
    if not secret:
        raise ValueError("the server secret is empty")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret)
    return AESGCM(key)


class SecretBox:
    """Seals short strings with AES-256-GCM under a key derived from the server secret.

    A sealed token is ``v1.`` + URL-safe base64 of (12-byte random nonce + ciphertext + tag).
    ``previous`` secrets, when given, are tried on ``open`` only: they let an operator move to a
    new ``CAJA_SECRET`` while values sealed under the old one are still readable.
    """

    def __init__(
        self, secret: bytes, previous: Sequence[bytes] = (), *, _aeads: tuple[AESGCM, ...] = ()
    ) -> None:
        if _aeads:  # a box over already-derived keys (opens_with_current)
            self._aead, self._older = _aeads[0], list(_aeads[1:])
            return
        self._aead = _derive(secret)
        self._older = [_derive(old) for old in previous]

    def seal(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), TOKEN_VERSION.encode())
        return f"{TOKEN_VERSION}.{base64.urlsafe_b64encode(sealed).decode('ascii')}"

    def opens_with_current(self, token: str) -> bool:
        """Whether ``token`` was sealed under the current secret (not only a previous one)."""
        try:
            SecretBox(b"", _aeads=(self._aead,)).open(token)
        except SealedSecretError:
            return False
        return True

    def open(self, token: str) -> str:
        version, _, body = token.partition(".")
        if version != TOKEN_VERSION or not body:
            raise SealedSecretError("not a sealed value of a known version")
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError):
            raise SealedSecretError("a sealed value is not valid base64") from None
        nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        for aead in (self._aead, *self._older):
            try:
                return aead.decrypt(nonce, ciphertext, TOKEN_VERSION.encode()).decode("utf-8")
            except (InvalidTag, ValueError):
                continue
        raise SealedSecretError(
            "a sealed value could not be opened: it is damaged or was sealed under another server "
            "secret (was CAJA_SECRET changed?)"
        )


async def load_server_secret(uow: UnitOfWorkFactory, clock: Clock, configured: str | None) -> bytes:
    """The server secret: ``configured`` (``CAJA_SECRET``) when set, else one kept in the database.

    The generated secret is created on first use and shared by every process on the database.
    """
    if configured:
        return configured.encode("utf-8")
    async with uow(write=True) as tx:
        return await tx.sequences.secret(GENERATED_SECRET_NAME, clock.now())


class ServerSecretMismatchError(RuntimeError):
    """The configured server secret cannot open what the database holds sealed."""


CANARY_NAME = "sealed_canary"
CANARY_TEXT = "caja-server-secret-canary"


async def load_secret_box(
    uow: UnitOfWorkFactory, clock: Clock, configured: str | None, previous: Sequence[str] = ()
) -> SecretBox:
    """The box for this process, checked against the database before anything is sealed or opened.

    A canary sealed under the first server secret tells at start-up whether ``CAJA_SECRET`` still
    opens the database's sealed values: if not, Caja refuses to start with a clear message
    instead of failing request by request. When it opens only with a previous secret
    (``CAJA_SECRET_PREVIOUS``), every sealed value is re-sealed under the new one in one
    transaction, after which the previous secret is no longer needed.
    """
    box = SecretBox(
        await load_server_secret(uow, clock, configured), [old.encode("utf-8") for old in previous if old]
    )
    async with uow(write=True) as tx:
        canary = await tx.sequences.stored(CANARY_NAME)
        if canary is None:
            # A database from before the canary: any value it already sealed plays the part.
            canary = await tx.sealed.sample()
            if canary is None or box.opens_with_current(canary):
                await tx.sequences.store_once(CANARY_NAME, box.seal(CANARY_TEXT), clock.now())
                return box
        try:
            box.open(canary)
        except SealedSecretError:
            raise ServerSecretMismatchError(
                "CAJA_SECRET cannot open the webhook keys, webhook secrets and network secrets this "
                "database holds: they were sealed under another server secret. Start with the old "
                "secret, or with the new one in CAJA_SECRET and the old one in CAJA_SECRET_PREVIOUS "
                "(Caja then re-seals everything under the new one)."
            ) from None
        if not box.opens_with_current(canary):
            resealed = await tx.sealed.reseal(box.open, box.seal)
            fresh = box.seal(CANARY_TEXT)
            await tx.sequences.replace_stored(CANARY_NAME, fresh)
            await tx.sequences.store_once(CANARY_NAME, fresh, clock.now())
            log.warning("re-sealed the database's secrets under the new server secret", values=resealed)
    return box
