"""Outgoing HTTP: one shared client, and a POST that always comes back with what happened."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from caja import __version__
from caja.domain.jobs import RESPONSE_BODY_LIMIT

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
) -> Exchange:
    """POST ``body`` and read at most ``read_limit`` bytes of the answer, all within ``timeout`` seconds.

    Never raises for network trouble: a timeout, a refused connection or a reset is an Exchange
    with ``error`` set and no status.
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
            request = client.build_request(
                "POST", url, content=body, headers=request_headers, timeout=httpx.Timeout(timeout)
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
