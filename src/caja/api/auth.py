"""Reading the private API key from ``Authorization: Bearer key_...`` or HTTP Basic ``key_...:``."""

from __future__ import annotations

import base64
import binascii

from caja.domain.errors import AuthenticationError


def presented_key(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationError.missing_key()
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    scheme = scheme.lower()
    if scheme == "bearer" and credentials:
        return credentials
    if scheme == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError.invalid_key() from None
        # curl -u key_xxx: sends the key as the user name and an empty password.
        user, _, _password = decoded.partition(":")
        if user:
            return user
    raise AuthenticationError.missing_key()
