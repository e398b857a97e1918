"""Outgoing HTTP: one shared client, and a POST that always comes back with what happened."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx

from caja import __version__
from caja.domain.jobs import RESPONSE_BODY_LIMIT
from caja.domain.webhooks import ip_literal, is_public_address

USER_AGENT = f"Caja-Webhooks/{__version__}"


def new_client(*, max_connections: int) -> httpx.AsyncClient:
    """A client for merchant endpoints: no redirects followed, no proxies from the environment."""
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
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
    client: httpx.AsyncClient,
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
            extensions: dict[str, Any] = {}
            if public_only:
                pinned = await _pin_public(url)
                if isinstance(pinned, str):
                    return done(error=pinned)
                target, host_header, extensions = pinned
                request_headers = {**request_headers, "Host": host_header}
            request = client.build_request(
                "POST",
                target,
                content=body,
                headers=request_headers,
                timeout=httpx.Timeout(timeout),
                extensions=extensions,
            )
            response = await client.send(request, stream=True)
            try:
                received = bytearray()
                async for chunk in response.aiter_bytes():
                    received += chunk
                    if len(received) >= read_limit:
                        break
            finally:
                await response.aclose()
    except TimeoutError:
        return done(error=f"timed out after {timeout:g} s", timed_out=True)
    except httpx.TimeoutException as exc:
        return done(error=f"timed out: {type(exc).__name__}", timed_out=True)
    except httpx.HTTPError as exc:
        return done(error=f"{type(exc).__name__}: {exc}"[:500])
    except OSError as exc:
        return done(error=f"{type(exc).__name__}: {exc}"[:500])
    return done(
        status=response.status_code,
        response_headers=dict(response.headers.items()),
        response_body=bytes(received[:read_limit]),
    )


async def _pin_public(url: str) -> tuple[str, str, dict[str, Any]] | str:
    """(URL with the checked address for its host, the Host header, request extensions) or why not."""
    parsed = httpx.URL(url)
    host = parsed.host
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
    host_header = parsed.netloc.decode("ascii").rpartition("@")[2]
    extensions: dict[str, Any] = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return str(parsed.copy_with(host=str(addresses[0]))), host_header, extensions
