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
from pathlib import Path

import httpx
import uvloop


async def run_aiohttp(
    url: str, requests: int, concurrency: int, body: bytes, headers: dict[str, str]
) -> dict:
    import aiohttp

    statuses: dict[int, int] = {}
    errors = 0
    next_index = 0
    connector = aiohttp.TCPConnector(limit=concurrency + 8, limit_per_host=0)
    async with aiohttp.ClientSession(
        connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:

        async def loop() -> None:
            nonlocal next_index, errors
            while next_index < requests:
                i = next_index
                next_index += 1
                try:
                    async with session.post(
                        url,
                        data=body,
                        headers={**headers, "webhook-id": f"peer_{i:08d}"},
                        allow_redirects=False,
                    ) as answer:
                        await answer.read()
                except aiohttp.ClientError:
                    errors += 1
                    continue
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        took = time.monotonic() - started
    return {
        "client": "aiohttp",
        "requests": requests,
        "seconds": round(took, 3),
        "rps": round(requests / took, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
    }


async def run_caja(url: str, requests: int, concurrency: int, body: bytes, headers: dict[str, str]) -> dict:
    from caja.delivery.http_client import HttpClient, HttpError

    statuses: dict[int, int] = {}
    errors = 0
    next_index = 0
    client = HttpClient(max_connections=concurrency + 8)

    async def loop() -> None:
        nonlocal next_index, errors
        while next_index < requests:
            i = next_index
            next_index += 1
            try:
                answer = await client.post(
                    url, body, {**headers, "webhook-id": f"peer_{i:08d}"}, read_limit=64 * 1024
                )
            except (HttpError, OSError):
                errors += 1
                continue
            statuses[answer.status] = statuses.get(answer.status, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    took = time.monotonic() - started
    await client.close()
    return {
        "client": "caja",
        "requests": requests,
        "seconds": round(took, 3),
        "rps": round(requests / took, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
    }


async def run(url: str, requests: int, concurrency: int, body: bytes, headers: dict[str, str]) -> dict:
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
    statuses: dict[int, int] = {}
    errors = 0
    next_index = 0
    async with httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False) as client:

        async def loop() -> None:
            nonlocal next_index, errors
            while next_index < requests:
                i = next_index
                next_index += 1
                try:
                    answer = await client.post(
                        url, content=body, headers={**headers, "webhook-id": f"peer_{i:08d}"}, timeout=10.0
                    )
                except httpx.HTTPError:
                    errors += 1
                    continue
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        took = time.monotonic() - started
    return {
        "client": "httpx",
        "requests": requests,
        "seconds": round(took, 3),
        "rps": round(requests / took, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
    }


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
    runner = {"caja": run_caja, "aiohttp": run_aiohttp, "httpx": run}[args.client]
    result = uvloop.run(runner(args.url, args.requests, args.concurrency, body, headers))
    print("PEER_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
