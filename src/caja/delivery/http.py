"""Outgoing HTTP: one shared client, and a POST that always comes back with what happened.

Every webhook delivery and every synchronous approval call is one of these POSTs, so their cost
was measured: against a loopback endpoint answering at once, ~1,700 µs of CPU through httpx (the
design's first choice), ~150 µs through aiohttp, ~65 µs through Caja's own client
(``http_client``), which is what this uses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from caja import __version__
from caja.delivery.http_client import HttpClient, HttpError
from caja.domain.jobs import RESPONSE_BODY_LIMIT
from caja.domain.webhooks import ip_literal, is_public_address

USER_AGENT = f"Caja-Webhooks/{__version__}"


Client = HttpClient


def new_client(*, max_connections: int) -> Client:
    """A client for merchant endpoints: no redirects, no proxies, no cookies (it has none of them:
    a receiver's cookies must never travel to the next delivery, maybe another merchant's)."""
    return HttpClient(max_connections=max_connections)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and what came back: a status and the start of the body, or an error."""

    url: str
    request_headers: dict[str, str]
    request_body: bytes
    started_at_ms: int
    duration_ms: int
    status: int | None = None
    response_headers: dict[str, str] | None = None
    response_body: bytes = b""
    error: str | None = None
    timed_out: bool = False

    @property
    def response_text(self) -> str:
        return self.response_body[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace")


async def post(
    client: Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,  # noqa: ASYNC109 - a budget for the whole exchange, enforced inside
    started_at_ms: int,
    read_limit: int = RESPONSE_BODY_LIMIT,
    public_only: bool = False,
) -> Exchange:
    """POST ``body`` and read at most ``read_limit`` bytes of the answer, all within ``timeout`` seconds.

    Never raises for network trouble: a timeout, a refused connection or a reset is an Exchange
    with ``error`` set and no status. ``public_only`` (live mode) resolves the host first and
    refuses to send anywhere but public addresses, then connects to the address it checked (the
    URL's name still goes in ``Host`` and in TLS's SNI and certificate check), so a name that
    resolves to a private address, now or by rebinding later, never reaches Caja's own network.
    """
    request_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    started = time.monotonic()

    def done(**fields: object) -> Exchange:
        return Exchange(
            url=url,
            request_headers=request_headers,
            request_body=body,
            started_at_ms=started_at_ms,
            duration_ms=round((time.monotonic() - started) * 1000),
            **fields,  # type: ignore[arg-type]
        )

    try:
        async with asyncio.timeout(timeout):
            connect_to: str | None = None
            server_hostname: str | None = None
            if public_only:
                pinned = await _pin_public(url)
                if isinstance(pinned, str):
                    return done(error=pinned)
                connect_to, server_hostname = pinned
            response = await client.post(
                url,
                body,
                request_headers,
                read_limit=read_limit,
                connect_to=connect_to,
                server_hostname=server_hostname,
            )
    except TimeoutError:
        return done(error=f"timed out after {timeout:g} s", timed_out=True)
    except (HttpError, OSError, ValueError) as exc:
        return done(error=f"{type(exc).__name__}: {exc}"[:500])
    return done(status=response.status, response_headers=response.headers, response_body=response.body)


async def _pin_public(url: str) -> tuple[str, str | None] | str:
    """(the checked address to connect to, the TLS server name) or why not.

    The request keeps the URL's name in ``Host`` and, over TLS, in SNI and the certificate check.
    """
    parsed = urlsplit(url)
    host = parsed.hostname or ""
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return f"{url} has no valid port"
    literal = ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            return f"cannot resolve {host}: {exc}"[:500]
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        return f"{host} resolves to no address"
    for address in addresses:
        if not is_public_address(address):
            return (
                f"refused: {host} resolves to a non-public address ({address}); live webhooks must be public"
            )
    server_hostname = host if parsed.scheme == "https" else None
    return str(addresses[0]), server_hostname
