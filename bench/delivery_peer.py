"""The delivery benchmark's peer: a bare HTTP client loop, the ceiling for one process on one core.

Posts ``--requests`` copies of the body in ``--body-file`` (with the headers in ``--headers-file``
and a ``webhook-id`` of its own each) to ``--url``, ``--concurrency`` at a time, on one shared
client (``--client``: Caja's own ``caja.delivery.http_client.HttpClient``, or, for revisions
before it, ``httpx.AsyncClient`` or ``aiohttp.ClientSession``: whichever Caja's dispatcher uses)
under uvloop — what Caja's dispatcher does per delivery, minus everything else it
does (claiming, signing, recording). Prints one JSON line with what it did.

    python bench/delivery_peer.py --url http://127.0.0.1:19xxx/hook --requests 10000 \\
        --concurrency 8 --body-file body.json --headers-file headers.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import uvloop

# One POST of the i-th copy: its status, or None when the client reported a failure.
Post = Callable[[int], Awaitable[int | None]]


async def drive(client: str, post: Post, requests: int, concurrency: int) -> dict:
    """``requests`` POSTs, ``concurrency`` at a time: what was answered and how fast."""
    statuses: dict[int, int] = {}
    errors = 0
    next_index = 0

    async def loop() -> None:
        nonlocal next_index, errors
        while next_index < requests:
            i = next_index
            next_index += 1
            status = await post(i)
            if status is None:
                errors += 1
            else:
                statuses[status] = statuses.get(status, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    took = time.monotonic() - started
    return {
        "client": client,
        "requests": requests,
        "seconds": round(took, 3),
        "rps": round(requests / took, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
    }


def numbered(headers: dict[str, str], i: int) -> dict[str, str]:
    return {**headers, "webhook-id": f"peer_{i:08d}"}


async def run_caja(url: str, requests: int, concurrency: int, body: bytes, headers: dict[str, str]) -> dict:
    from caja.delivery.http_client import HttpClient, HttpError

    client = HttpClient(max_connections=concurrency + 8)

    async def post(i: int) -> int | None:
        try:
            return (await client.post(url, body, numbered(headers, i), read_limit=64 * 1024)).status
        except (HttpError, OSError):
            return None

    try:
        return await drive("caja", post, requests, concurrency)
    finally:
        await client.close()


async def run_aiohttp(
    url: str, requests: int, concurrency: int, body: bytes, headers: dict[str, str]
) -> dict:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency + 8, limit_per_host=0)
    async with aiohttp.ClientSession(
        connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:

        async def post(i: int) -> int | None:
            try:
                async with session.post(
                    url, data=body, headers=numbered(headers, i), allow_redirects=False
                ) as answer:
                    await answer.read()
                    return answer.status
            except aiohttp.ClientError:
                return None

        return await drive("aiohttp", post, requests, concurrency)


async def run_httpx(url: str, requests: int, concurrency: int, body: bytes, headers: dict[str, str]) -> dict:
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
    async with httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False) as client:

        async def post(i: int) -> int | None:
            try:
                answer = await client.post(url, content=body, headers=numbered(headers, i), timeout=10.0)
            except httpx.HTTPError:
                return None
            return answer.status_code

        return await drive("httpx", post, requests, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--headers-file", type=Path, required=True)
    parser.add_argument("--client", choices=["caja", "httpx", "aiohttp"], default="caja")
    args = parser.parse_args()
    body = args.body_file.read_bytes()
    headers = json.loads(args.headers_file.read_text())
    runner = {"caja": run_caja, "aiohttp": run_aiohttp, "httpx": run_httpx}[args.client]
    result = uvloop.run(runner(args.url, args.requests, args.concurrency, body, headers))
    print("PEER_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
