"""Outgoing HTTP: one shared client, and a POST that always comes back with what happened.

aiohttp, not httpx (the design's first choice): measured on this machine against a loopback
endpoint that answers at once, an httpx POST cost ~1,700 µs of CPU and an aiohttp POST ~90 µs,
and every webhook delivery and every synchronous approval call is one of these.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from caja import __version__
from caja.domain.jobs import RESPONSE_BODY_LIMIT
from caja.domain.webhooks import ip_literal, is_public_address

USER_AGENT = f"Caja-Webhooks/{__version__}"


Client = aiohttp.ClientSession


def new_client(*, max_connections: int) -> Client:
    """A client for merchant endpoints: no redirects, no proxies from the environment, no cookies.

    Must be made inside the event loop that uses it (aiohttp binds a session to its loop).
    """
    return aiohttp.ClientSession(
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
        # A receiver's cookies must never travel to the next delivery (maybe another merchant's).
        cookie_jar=aiohttp.DummyCookieJar(),
        connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ttl_dns_cache=60),
    )


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
            target: str = url
            server_hostname: str | None = None
            if public_only:
                pinned = await _pin_public(url)
                if isinstance(pinned, str):
                    return done(error=pinned)
                target, host_header, server_hostname = pinned
                request_headers = {**request_headers, "Host": host_header}
            async with client.post(
                target,
                data=body,
                headers=request_headers,
                allow_redirects=False,
                server_hostname=server_hostname,
            ) as response:
                received = bytearray()
                while len(received) < read_limit:
                    chunk = await response.content.read(read_limit - len(received))
                    if not chunk:
                        break
                    received += chunk
                status = response.status
                # Lower-case plain str keys, as before (aiohttp's are case-insensitive str subclasses).
                response_headers = {str(k).lower(): v for k, v in response.headers.items()}
    except TimeoutError:
        return done(error=f"timed out after {timeout:g} s", timed_out=True)
    except aiohttp.ClientError as exc:
        return done(error=f"{type(exc).__name__}: {exc}"[:500])
    except OSError as exc:
        return done(error=f"{type(exc).__name__}: {exc}"[:500])
    return done(status=status, response_headers=response_headers, response_body=bytes(received[:read_limit]))


async def _pin_public(url: str) -> tuple[str, str, str | None] | str:
    """(URL with the checked address for its host, the Host header, the TLS server name) or why not."""
    parsed = URL(url)
    host = parsed.host or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
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
    host_header = parsed.host_port_subcomponent or host
    server_hostname = host if parsed.scheme == "https" else None
    return str(parsed.with_host(str(addresses[0]))), host_header, server_hostname
