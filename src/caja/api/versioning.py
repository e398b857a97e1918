"""Conekta's API version travels in the Accept header: ``application/vnd.conekta-v2.3.0+json``."""

from __future__ import annotations

import re

from caja.domain.errors import UnsupportedVersionError

SUPPORTED_MINORS = (0, 1, 2, 3)
LATEST = "2.3.0"
_VENDOR = re.compile(r"application/vnd\.conekta-v(\d+)\.(\d+)\.(\d+)\+json\s*(?:;.*)?", re.IGNORECASE)


def media_type(version: str) -> str:
    return f"application/vnd.conekta-v{version}+json"


def negotiate(accept: str | None) -> str:
    """The version a request asks for.

    A request that names a Conekta version must name a supported one (2.0.0 to 2.3.0); one that
    names none (no Accept, ``*/*``, ``application/json``) gets the latest, as ``curl`` users expect.
    """
    if not accept or "vnd.conekta" not in accept.lower():
        return LATEST
    for part in accept.split(","):
        part = part.strip()
        if "vnd.conekta" not in part.lower():
            continue
        match = _VENDOR.fullmatch(part)
        if match and match[1] == "2" and int(match[2]) in SUPPORTED_MINORS and match[3] == "0":
            return f"2.{int(match[2])}.0"
    raise UnsupportedVersionError.for_accept(accept)


def lenient(accept: str | None) -> str:
    """For rendering errors: never fail, fall back to the latest version."""
    try:
        return negotiate(accept)
    except UnsupportedVersionError:
        return LATEST
