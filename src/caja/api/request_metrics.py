"""Counts and times every HTTP request by its route template (``caja_http_requests_total``)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caja import metrics
from caja.api.network import FAST_CALLS

# Paths that matched no route share one label: a scan of random URLs must not create series.
UNMATCHED = "unmatched"
# Likewise methods: httptools parses a few dozen, and only these mean anything to Caja.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server sends when the app ends without answering

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = _route(scope)
            metrics.series(metrics.http_requests, method, route, str(status)).inc()
            metrics.series(metrics.http_request_seconds, method, route).observe(time.perf_counter() - started)


def _route(scope: Scope) -> str:
    # The router leaves the route it matched in the scope; the store network's fast path
    # (caja.api.network_fast) answers its two fixed paths before any router runs.
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    path = scope["path"]
    return path if path in FAST_CALLS else UNMATCHED
