"""Refuse oversized bodies up front, with a Conekta error object rather than a bare 413."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from caja.api.errors import render
from caja.domain.errors import ErrorDetail, RequestError


class PayloadTooLargeError(RequestError):
    http_status = 413


class BodySizeLimit:
    """Checks ``Content-Length``; FastAPI's own ``max_body_size`` still guards chunked bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if not value.isdigit() or int(value) > self.max_bytes:
                        await self._refuse(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = render(Request(scope, receive), PayloadTooLargeError([too_large(self.max_bytes)]))
        await response(scope, receive, send)


def too_large(max_bytes: int) -> ErrorDetail:
    return ErrorDetail(
        code="conekta.errors.request.payload_too_large",
        message_es=f"El cuerpo de la solicitud excede {max_bytes} bytes.",
        message_en=f"The request body exceeds {max_bytes} bytes.",
        debug_message=f"Bodies are limited to {max_bytes} bytes.",
    )
