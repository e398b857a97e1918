"""The store network's lookups and payments served straight from ASGI, ahead of the framework.

Every payment at the till is a lookup and a payment, each signed by the network and short. In
front of Caja's own work they crossed about a dozen layers of Starlette and FastAPI (error and
body-limit middlewares, an exit stack, routing, the request-response wrapper): measured with
py-spy at 64 stores, those frames alone cost ~10% of a payment's CPU. This middleware takes
exactly ``POST`` to the two paths of ``caja.api.network.FAST_CALLS`` and runs the same functions
the documented routes run; anything else goes on to the application untouched. Errors become
the same Conekta error objects, through the same renderer.
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caja.api.errors import render
from caja.api.limits import PayloadTooLargeError, too_large
from caja.api.network import FAST_CALLS, SignedCall
from caja.bootstrap import Container
from caja.domain.errors import CajaError, InternalError
from caja.domain.networks import HEADER_NETWORK, HEADER_SIGNATURE, HEADER_TIMESTAMP

log = structlog.get_logger("caja.api")

_WANTED = {name.encode(): name for name in (HEADER_NETWORK, HEADER_TIMESTAMP, HEADER_SIGNATURE)}


class _ClientGone(Exception):
    """The client hung up before its body arrived: nobody is left to answer."""


class NetworkFastPath:
    def __init__(self, app: ASGIApp, container: Container, max_body_bytes: int) -> None:
        self.app = app
        self.container = container
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            answer = FAST_CALLS.get(scope["path"])
            if answer is not None:
                try:
                    headers = {
                        _WANTED[name]: value.decode("latin-1")
                        for name, value in scope["headers"]
                        if name in _WANTED
                    }
                    call = SignedCall("POST", scope["path"], headers, await self._body(receive))
                    response: Response = await answer(self.container, call)
                except _ClientGone:
                    return
                except CajaError as exc:
                    response = render(Request(scope, receive), exc)
                except Exception as exc:
                    log.exception("unhandled_error", path=scope["path"], exc_type=type(exc).__name__)
                    response = render(Request(scope, receive), InternalError.general())
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _body(self, receive: Receive) -> bytes:
        """The whole body, refused past the limit even when it comes in chunks of unknown length."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLargeError([too_large(self.max_body_bytes)])
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
