"""``caja worker --metrics-port``: ``GET /metrics`` over HTTP beside a worker's dispatcher.

A worker serves no API, but its attempt counters are its own (docs/operations.md, "Metrics"):
without this, a scaled-out deployment's deliveries would go uncounted wherever workers send them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn

from caja.app import create_metrics_app
from caja.bootstrap import Container


class _InLoopServer(uvicorn.Server):
    """uvicorn on the worker's own loop. The worker owns SIGTERM and SIGINT (it hands its jobs back
    before it exits), so this server must not take them over, as ``uvicorn.Server.serve`` does."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving_metrics(container: Container, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``GET /metrics`` on ``host:port`` until the block ends; yields its URL once listening."""
    config = uvicorn.Config(
        create_metrics_app(container),
        host=host,
        port=port,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
    )
    server = _InLoopServer(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # uvicorn could not listen: its exit ends the worker, with its log line
            raise RuntimeError(f"the metrics server on {host}:{port} stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://{host}:{port}/metrics"
    finally:
        server.should_exit = True
        await serving
