"""``/slips/{source_id}``: the payer's payment slip ("ficha de pago") of a ``cash_recurrent`` source.

An HTML page (printable: see ``static/slip.css``) and the same slip as a PDF at
``/slips/{source_id}.pdf``. No credentials: payers open the link the merchant sends them, and the
source id in it (93 random bits) is what keeps a slip private. Unknown, deleted and SPEI sources
answer 404 and an expired reference 410, each with a page a payer can read, never a JSON error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import jinja2
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from caja.api.context import container_of
from caja.domain.mail import spanish_datetime
from caja.domain.representations import iso8601
from caja.domain.slips import Slip
from caja.services import slips
from caja.web import slip_pdf
from caja.web.barcodes import BarcodeRenderer

BASE: Final = "/slips"
ASSETS: Final = f"{BASE}/assets"
_HERE: Final = Path(__file__).parent
_ASSET_TYPES: Final = {"slip.css": "text/css; charset=utf-8", "slip.js": "text/javascript; charset=utf-8"}
# Ids are ``off_ref_`` + 17 base58 characters. Anything else is no slip, and never reaches the
# database (PostgreSQL refuses a NUL byte in text outright).
_ID_SHAPE: Final = re.compile(r"[A-Za-z0-9_]{1,64}")
# ``data:`` only for the page's empty favicon (so the browser asks Caja for none). No
# frame-ancestors: Conekta's guide suggests showing the slip inside the merchant's checkout, and a
# page with no forms or actions has nothing to click-jack.
_CSP: Final = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)
# The URL is the secret: kept out of shared caches, search engines and other sites' Referer.
_PRIVATE: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates" / "slip"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_env.filters["fecha"] = spanish_datetime
_env.filters["iso"] = iso8601


def slip_path(source_id: str) -> str:
    return f"{BASE}/{source_id}"


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(assets=ASSETS, **context)
    return HTMLResponse(html, status_code=status, headers={**_PRIVATE, "Content-Security-Policy": _CSP})


async def _payable(request: Request, source_id: str) -> Slip | HTMLResponse:
    """The slip, or the page that says why there is none."""
    if not _ID_SHAPE.fullmatch(source_id):
        return _page("unavailable.html", 404, expired_at=None)
    container = container_of(request)
    slip = await slips.find(container.uow, source_id)
    if slip is None:
        return _page("unavailable.html", 404, expired_at=None)
    if slip.is_expired(container.clock.now()):
        # Gone rather than missing: the merchant may still extend it, bringing the slip back.
        return _page("unavailable.html", 410, expired_at=slip.expires_at)
    return slip


@router.get(f"{ASSETS}/{{name}}")
async def asset(name: str) -> Response:
    media_type = _ASSET_TYPES.get(name)
    if media_type is None:
        return Response(status_code=404)
    content = (_HERE / "static" / name).read_bytes()
    return Response(content, media_type=media_type, headers={"Cache-Control": "public, max-age=300"})


# Before the HTML route: ``{source_id}`` alone would also match ``off_ref_….pdf``.
@router.get(f"{BASE}/{{source_id}}.pdf")
async def slip_as_pdf(request: Request, source_id: str) -> Response:
    found = await _payable(request, source_id)
    if isinstance(found, HTMLResponse):
        return found
    pdf = await run_in_threadpool(_render_pdf, container_of(request).barcodes, found)
    disposition = f'inline; filename="ficha-de-pago-{found.reference}.pdf"'
    return Response(
        pdf, media_type="application/pdf", headers={**_PRIVATE, "Content-Disposition": disposition}
    )


def _render_pdf(barcodes: BarcodeRenderer, slip: Slip) -> bytes:
    return slip_pdf.render(slip, barcodes.png(slip.reference))


@router.get(f"{BASE}/{{source_id}}")
async def slip_page(request: Request, source_id: str) -> Response:
    found = await _payable(request, source_id)
    if isinstance(found, HTMLResponse):
        return found
    return _page(
        "slip.html",
        slip=found,
        # Same origin as the page, whatever host the payer used: the CSP allows only 'self'.
        barcode_src=f"/barcodes/{found.reference}.png",
        pdf_href=f"{slip_path(found.source_id)}.pdf",
    )
