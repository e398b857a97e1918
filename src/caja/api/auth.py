"""Reading the private API key from ``Authorization: Bearer key_...`` or HTTP Basic ``key_...:``,
and checking the operator's token."""

from __future__ import annotations

import base64
import binascii
import hmac

from caja.domain.errors import AuthenticationError, ForbiddenError


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


def check_admin_token(authorization: str | None, expected: str | None) -> None:
    """``Authorization: Bearer <expected>``, or the Conekta error that says what is wrong.

    No token configured turns the operator's routes off (403) rather than leaving them open: the
    metrics span every account. A merchant's key is never the token, so it gets a 401.
    """
    if not expected:
        raise ForbiddenError.admin_disabled()
    if not authorization:
        raise AuthenticationError.missing_key()
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), expected.encode()):
        raise AuthenticationError.invalid_admin_token()
