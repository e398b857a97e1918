"""Counts the HTTP requests in flight, so background jobs can give way to them (caja.delivery.priority)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from caja.delivery.priority import Foreground


class CountInFlight:
    """The outermost layer: a request counts from its arrival until its answer is sent."""

    def __init__(self, app: ASGIApp, foreground: Foreground) -> None:
        self.app = app
        self.foreground = foreground

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.foreground.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.foreground.leave()
