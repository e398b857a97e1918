"""``/_caja/cashier``: the cashier simulator, a store's point-of-sale terminal in the browser.

The page (``templates/dashboard/cashier.html`` + ``static/cashier.js``) calls the real network
API (``/network/v1/...``) from the browser, as a store terminal would. Those calls must be signed
with the account's sandbox network secret (``services.networks.sandbox_for``), which must never
reach the browser, so the page asks ``POST /_caja/cashier/sign`` for the three signature headers
of the exact body it is about to send. The signer sits behind the dashboard's session (a test
key, sealed in its cookie) and the page's form token, and signs only the network API's POST paths:
the account can sign nothing its own sandbox network could not do anyway, and that network only
ever sees the account's own test references.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from starlette.responses import JSONResponse, Response

from caja.domain.networks import sign
from caja.domain.stores import STORE_NAMES
from caja.services import networks
from caja.web.dashboard import no_store, render_page, session_of, to_login

BASE = "/_caja/cashier"
CSRF_HEADER = "x-caja-csrf"
# The only requests the terminal makes; anything else is refused rather than signed.
SIGNABLE_PATHS = frozenset({"/network/v1/lookups", "/network/v1/payments", "/network/v1/reversals"})
MAX_BODY = 4_096  # the network API's bodies are a few hundred bytes
_HERE = Path(__file__).parent
_ASSETS = {"cashier.css": "text/css; charset=utf-8", "cashier.js": "text/javascript; charset=utf-8"}
# The dashboard's policy plus connect-src 'self': the page fetches the signer and the network API.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

router = APIRouter(include_in_schema=False)


def _refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=no_store({}))


@router.get(BASE)
async def cashier_page(request: Request) -> Response:
    session = await session_of(request)
    if session is None:
        return to_login(back_to=BASE)
    response = render_page(
        "cashier.html", session=session, section="cashier", stores=STORE_NAMES, cashier=BASE
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


def _sign_request(payload: Any) -> tuple[str, str, bytes] | str:
    """(method, path, body bytes) from ``{method, path, body}``, or why it cannot be signed."""
    if not isinstance(payload, dict) or set(payload) != {"method", "path", "body"}:
        return "expected exactly {method, path, body}"
    method, path, body = payload["method"], payload["path"], payload["body"]
    if method != "POST":
        return "method must be POST"
    if not isinstance(path, str) or path not in SIGNABLE_PATHS:
        return f"path must be one of {', '.join(sorted(SIGNABLE_PATHS))}"
    if not isinstance(body, str) or len(body) > MAX_BODY:
        return f"body must be a string of at most {MAX_BODY} characters"
    try:
        # The browser sends the body string as UTF-8: sign exactly those bytes.
        encoded = body.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: fetch would send U+FFFD instead
        return "body is not valid Unicode text"
    return method, path, encoded


@router.post(f"{BASE}/sign")
async def sign_for_page(request: Request) -> Response:
    session = await session_of(request)
    if session is None:
        return _refused(401, "sign in to the dashboard with a test key")
    # The cookie is SameSite=Strict already; the page's token also proves the call comes from it.
    if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), session.csrf):
        return _refused(403, "missing or wrong X-Caja-Csrf token")
    raw = await request.body()
    if len(raw) > 4 * MAX_BODY:
        return _refused(413, "request too large")
    try:
        payload = json.loads(raw)
    except ValueError:
        return _refused(400, "the body must be JSON")
    parsed = _sign_request(payload)
    if isinstance(parsed, str):
        return _refused(422, parsed)
    method, path, body = parsed
    c = session.container
    issued = await networks.sandbox_for(c.uow, c.clock, c.secret_box, session.tenant)
    timestamp = str(c.clock.now())
    headers = {
        "X-Caja-Network": issued.network.id,
        "X-Caja-Timestamp": timestamp,
        "X-Caja-Signature": sign(issued.secret, timestamp, method, path, body),
    }
    return JSONResponse({"headers": headers}, headers=no_store({}))


@router.get(f"{BASE}/assets/{{name}}")
async def asset(name: Annotated[str, PathParam(max_length=40)]) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:
        return Response(status_code=404)
    content = (_HERE / "static" / name).read_bytes()
    return Response(content, media_type=media_type, headers={"Cache-Control": "public, max-age=300"})
