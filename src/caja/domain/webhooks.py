"""Webhooks: where an account's events are delivered, and the health of each endpoint."""

from __future__ import annotations

import enum
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from caja.domain.errors import ParameterValidationError
from caja.domain.events import SUBSCRIBABLE_EVENT_TYPES, SYNCHRONOUS_EVENT_TYPES

MAX_WEBHOOKS_PER_TENANT = 10


class WebhookStatus(enum.StrEnum):
    """Conekta's webhook statuses, plus ``disabled`` for endpoints Caja stopped delivering to.

    being_pinged: just created, its first delivery (a ``webhook_ping``) not yet answered.
    listening: the last delivery succeeded.
    intermittent_errors: deliveries are failing and being retried.
    disabled: failing for longer than the configured period, or answered 410 Gone.
    """

    BEING_PINGED = "being_pinged"
    LISTENING = "listening"
    INTERMITTENT_ERRORS = "intermittent_errors"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    account_id: str
    livemode: bool
    url: str
    description: str | None
    # Empty: every event type, including types added to Caja later.
    subscribed_events: tuple[str, ...]
    status: WebhookStatus
    active: bool
    # A synchronous webhook receives only the recurrent-cash approval calls, never ordinary events.
    synchronous: bool
    # The Standard Webhooks secret (``whsec_...``) in clear; the store keeps it sealed.
    signing_secret: str
    failing_since: int | None
    created_at: int
    updated_at: int
    deleted_at: int | None = None

    def subscribes_to(self, event_type: str) -> bool:
        return is_subscribed(self.subscribed_events, event_type)


@dataclass(frozen=True, slots=True)
class NewWebhook:
    url: str
    description: str | None = None
    subscribed_events: tuple[str, ...] = ()
    synchronous: bool = False
    active: bool = True


# The fields a PUT may change.
UPDATABLE_FIELDS = frozenset({"url", "description", "subscribed_events", "active", "synchronous"})


@dataclass(frozen=True, slots=True)
class WebhookKey:
    """An RSA key pair whose private half signs each delivery's ``Digest`` header."""

    id: str
    account_id: str
    livemode: bool
    public_key: str
    active: bool
    created_at: int
    deactivated_at: int | None = None
    deleted_at: int | None = None


def is_subscribed(subscribed_events: Iterable[str], event_type: str) -> bool:
    """An empty subscription takes every event type."""
    events = tuple(subscribed_events)
    return not events or event_type in events


def receives_ordinary_events(*, active: bool, deleted: bool, status: str, synchronous: bool) -> bool:
    """Whether an event fans out to this webhook at all (before looking at its subscription)."""
    return active and not deleted and not synchronous and status != WebhookStatus.DISABLED


def check_subscriptions(events: Iterable[str], param: str = "subscribed_events") -> tuple[str, ...]:
    """Known event types only, in the order given, without repeats."""
    seen: dict[str, None] = {}
    for index, name in enumerate(events):
        if name in SYNCHRONOUS_EVENT_TYPES:
            raise ParameterValidationError.invalid(
                f"{param}[{index}]",
                f"{name} is sent only to synchronous webhooks, as an approval call; it cannot be subscribed.",
            )
        if name not in SUBSCRIBABLE_EVENT_TYPES:
            raise ParameterValidationError.invalid(f"{param}[{index}]", f"Unknown event type {name[:80]!r}.")
        seen[name] = None
    return tuple(seen)


MAX_URL_LENGTH = 2048
_LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def check_url(url: str, *, livemode: bool, param: str = "url") -> str:
    """An absolute http(s) URL; in live mode also one that cannot reach Caja's own network.

    Test mode may target loopback and private addresses, for local development. Live mode refuses
    loopback, private, link-local, multicast and reserved addresses (IPv4 in any notation a
    resolver accepts, IPv6, IPv4-mapped), ``localhost`` and local-only names, and single-label
    names: a merchant's live webhook must be a public endpoint (SSRF protection). A public name
    that resolves to a private address is the dispatcher's to refuse, at connection time.
    """
    if len(url) > MAX_URL_LENGTH:
        raise ParameterValidationError.invalid(param, f"A URL may have at most {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ParameterValidationError.invalid(param, "A URL may not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ParameterValidationError.invalid(param, "It is not a valid URL.") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise ParameterValidationError.invalid(param, "Webhook URLs must use http or https.")
    host = (parts.hostname or "").rstrip(".")
    if not host or port == 0:
        raise ParameterValidationError.invalid(param, "A webhook URL needs a host.")
    if livemode:
        why = _why_not_public(host)
        if why:
            raise ParameterValidationError.single(
                param,
                "not_public",
                "En modo productivo el webhook debe apuntar a una dirección pública.",
                "In live mode a webhook must point to a public address.",
                f'The "{param}" parameter points to {why}: live webhooks must be public endpoints '
                "(test mode may use local addresses).",
            )
    return url


def _why_not_public(host: str) -> str | None:
    address = ip_literal(host)
    if address is not None:
        return None if is_public_address(address) else f"a non-public address ({address})"
    name = host.lower()
    if name == "localhost" or name.endswith(_LOCAL_SUFFIXES):
        return f"a local name ({name})"
    if "." not in name:
        return f"a single-label name ({name}) that only resolves on a local network"
    return None


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, including the legacy IPv4 forms resolvers accept
    (``127.1``, ``2130706433``, ``0x7f.0.0.1``); None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A globally routable unicast address: what a live webhook (and its resolved name) must be."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast
