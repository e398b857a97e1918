"""``/_caja/dashboard``: the sandbox dashboard, server-rendered (Jinja2), no CDN, no build step.

Events with every delivery attempt (request headers and body, response status, headers and
body) and a Resend button; a synchronous webhook's approval calls and what it answered; the mail
catcher's messages, their HTML shown in a sandboxed iframe.

Sign-in takes a TEST private key in a POST form; the browser keeps it only sealed (AES-GCM with
the server secret, with an expiry) in an HttpOnly, SameSite=Strict cookie scoped to ``/_caja``,
so the key is never in a URL, a page or a log. Every form carries a token derived from that
cookie. Pages send a strict Content-Security-Policy; an e-mail's HTML is served on its own with
``sandbox`` (no scripts, an opaque origin) and loaded into an ``<iframe sandbox>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from starlette.responses import HTMLResponse, RedirectResponse, Response

from caja.api.context import container_of
from caja.bootstrap import Container
from caja.delivery.keyring import SealedSecretError
from caja.domain.approval_log import ApprovalCall, approval_call_json
from caja.domain.errors import CajaError
from caja.domain.money import Centavos, format_mxn
from caja.domain.paging import PageRequest
from caja.domain.representations import event_envelope
from caja.domain.tenancy import Tenant
from caja.services import dashboard, emails, events, webhooks

BASE = "/_caja/dashboard"
COOKIE = "caja_dashboard"
SESSION_SECONDS = 8 * 3600
PAGE_SIZE = 25
_HERE = Path(__file__).parent
_ASSETS = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# An e-mail's HTML: inline styles and remote images as a mail client would show them, nothing else.
EMAIL_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src http: https: data:; font-src data:"
)

router = APIRouter(include_in_schema=False)
Id = Annotated[str, PathParam(max_length=64)]
Cursor = Annotated[str | None, Query(max_length=64)]


def _when(epoch: int | None) -> str:
    if not epoch:
        return "—"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when_ms(epoch_ms: int | None) -> str:
    if not epoch_ms:
        return "—"
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _pretty(body: Any) -> str:
    """JSON pretty-printed when it is JSON (a string holding JSON too), else as it is."""
    if body is None:
        return ""
    if isinstance(body, str):
        text = body
        try:
            body = json.loads(text)
        except ValueError:
            return text
    return json.dumps(body, indent=2, ensure_ascii=False)


def _mxn(amount: int | None) -> str:
    return "—" if amount is None else format_mxn(Centavos(amount))


def _range(reply: dict[str, Any]) -> str:
    """An approval's range as a merchant reads it; empty when it set none (the network's limits)."""
    low, high = reply.get("min_amount"), reply.get("max_amount")
    if low is not None and high is not None:
        return f"{_mxn(low)} a {_mxn(high)}"
    if low is not None:
        return f"desde {_mxn(low)}"
    return f"hasta {_mxn(high)}" if high is not None else ""


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates" / "dashboard"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_env.filters["when"] = _when
_env.filters["when_ms"] = _when_ms
_env.filters["pretty"] = _pretty
_env.filters["mxn"] = _mxn
_env.filters["range"] = _range


@dataclass(frozen=True, slots=True)
class Session:
    tenant: Tenant
    container: Container
    csrf: str


def _csrf(cookie: str) -> str:
    return hashlib.sha256(f"csrf:{cookie}".encode()).hexdigest()[:32]


async def session_of(request: Request) -> Session | None:
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    container = container_of(request)
    try:
        sealed = json.loads(container.secret_box.open(cookie))
        key, expires = str(sealed["k"]), int(sealed["exp"])
    except (SealedSecretError, ValueError, KeyError, TypeError):
        return None
    if expires < container.clock.now():
        return None
    try:
        tenant = await container.keys.tenant(key)
    except CajaError:
        return None  # the key was revoked
    if tenant.livemode:
        return None
    return Session(tenant, container, _csrf(cookie))


def render_page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(base=BASE, **context)
    return HTMLResponse(html, status_code=status, headers=no_store({"Content-Security-Policy": PAGE_CSP}))


def no_store(headers: dict[str, str]) -> dict[str, str]:
    return {
        **headers,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def to_login(back_to: str | None = None) -> RedirectResponse:
    """To the sign-in page; ``back_to``: the page to return to once signed in."""
    query = f"?{urlencode({'next': back_to})}" if back_to and _local_page(back_to) else ""
    return RedirectResponse(f"{BASE}/login{query}", status_code=303)


# Pages a sign-in may return to: Caja's own, by path only. Never a URL another site could take
# the browser to (``//host``, ``https://...``, backslashes some browsers read as slashes).
_LOCAL_PAGE = re.compile(r"/_caja/[A-Za-z0-9_/-]*")


def _local_page(path: str) -> bool:
    return _LOCAL_PAGE.fullmatch(path) is not None and "//" not in path


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:16_384].decode("utf-8", "replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}


def _checked(session: Session, form: dict[str, str]) -> bool:
    return hmac.compare_digest(form.get("csrf", ""), session.csrf)


# --- signing in and out -----------------------------------------------------------------------


@router.get(BASE)
async def home(request: Request) -> Response:
    return RedirectResponse(
        f"{BASE}/events" if await session_of(request) else f"{BASE}/login", status_code=303
    )


def _after_login(back_to: str | None) -> str:
    return back_to if back_to and _local_page(back_to) else f"{BASE}/events"


@router.get(f"{BASE}/login")
async def login_page(request: Request) -> Response:
    back_to = request.query_params.get("next")
    if await session_of(request):
        return RedirectResponse(_after_login(back_to), status_code=303)
    return render_page("login.html", error=None, session=None, back_to=_after_login(back_to))


@router.post(f"{BASE}/login")
async def login(request: Request) -> Response:
    container = container_of(request)
    form = await _form(request)
    key = form.get("api_key", "").strip()
    back_to = _after_login(form.get("next"))
    error = None
    tenant = None
    if not key:
        error = "Escribe una llave privada de prueba."
    else:
        try:
            tenant = await container.keys.tenant(key)
        except CajaError:
            error = "La llave no es válida."
        else:
            if tenant.livemode:
                error = "El panel de pruebas solo acepta llaves de prueba, no llaves en vivo."
    if error is not None or tenant is None:
        return render_page(
            "login.html", status=401 if key else 400, error=error, session=None, back_to=back_to
        )
    sealed = container.secret_box.seal(json.dumps({"k": key, "exp": container.clock.now() + SESSION_SECONDS}))
    response = RedirectResponse(back_to, status_code=303)
    response.set_cookie(
        COOKIE,
        sealed,
        max_age=SESSION_SECONDS,
        path="/_caja",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post(f"{BASE}/logout")
async def logout(request: Request) -> Response:
    response = to_login()
    response.delete_cookie(COOKIE, path="/_caja")
    return response


# --- events -----------------------------------------------------------------------------------


def _paging(path: str, page: Any, extra: dict[str, str | None] | None = None) -> dict[str, str | None]:
    def link(name: str, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        query = {k: v for k, v in (extra or {}).items() if v}
        query[name] = cursor
        return f"{path}?{urlencode(query)}"

    return {"newer": link("previous", page.previous_cursor), "older": link("next", page.next_cursor)}


@router.get(f"{BASE}/events")
async def events_page(
    request: Request,
    next: Cursor = None,
    previous: Cursor = None,
    type: Annotated[str | None, Query(max_length=80)] = None,
) -> Response:
    session = await session_of(request)
    if session is None:
        return to_login(back_to=request.url.path)
    c = session.container
    page_request = PageRequest(
        limit=PAGE_SIZE, next=next or None, previous=None if next else previous or None
    )
    try:
        page = await events.list_page(c.uow, session.tenant, page_request, type or None)
    except CajaError:
        page = await events.list_page(c.uow, session.tenant, PageRequest(limit=PAGE_SIZE), type or None)
    return render_page(
        "events.html",
        session=session,
        section="events",
        items=page.items,
        type=type or "",
        paging=_paging(f"{BASE}/events", page, {"type": type}),
    )


@router.get(f"{BASE}/events/{{event_id}}")
async def event_page(
    request: Request, event_id: Id, aviso: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    session = await session_of(request)
    if session is None:
        return to_login(back_to=request.url.path)
    c = session.container
    try:
        view = await dashboard.event_deliveries(c.uow, session.tenant, event_id)
    except CajaError:
        return render_page("missing.html", status=404, session=session, section="events", what="evento")
    return render_page(
        "event.html",
        session=session,
        section="events",
        view=view,
        event=view.detail.event,
        envelope=event_envelope(view.detail.event),
        notice=aviso,
    )


@router.post(f"{BASE}/events/{{event_id}}/resend")
async def resend(request: Request, event_id: Id) -> Response:
    session = await session_of(request)
    if session is None:
        return to_login()
    form = await _form(request)
    if not _checked(session, form):
        return render_page("missing.html", status=403, session=session, section="events", what="formulario")
    c = session.container
    notice = "Reenvío programado."
    try:
        await events.resend(c.uow, c.clock, session.tenant, event_id, [form.get("webhook_id", "")])
    except CajaError as exc:
        notice = f"No se pudo reenviar: {exc.details[0].message_es if exc.details else exc}"
    return RedirectResponse(
        f"{BASE}/events/{event_id}?{urlencode({'aviso': notice})}#deliveries", status_code=303
    )


# --- caught e-mails ---------------------------------------------------------------------------


@router.get(f"{BASE}/approvals")
async def approvals_page(
    request: Request,
    webhook: Annotated[str | None, Query(max_length=64)] = None,
    next: Cursor = None,
    previous: Cursor = None,
) -> Response:
    session = await session_of(request)
    if session is None:
        return to_login(back_to=request.url.path)
    c = session.container
    hooks = await webhooks.synchronous(c.uow, c.secret_box, session.tenant)
    chosen = [hook for hook in hooks if hook.id == webhook] or hooks[:1]
    calls: list[ApprovalCall] = []
    paging: dict[str, str | None] = {"newer": None, "older": None}
    if chosen:
        hook_id = chosen[0].id
        page_request = PageRequest(
            limit=PAGE_SIZE, next=next or None, previous=None if next else previous or None
        )
        try:
            page = await webhooks.approval_calls(c.uow, c.secret_box, session.tenant, hook_id, page_request)
        except CajaError:
            page = await webhooks.approval_calls(
                c.uow, c.secret_box, session.tenant, hook_id, PageRequest(limit=PAGE_SIZE)
            )
        calls = page.items
        paging = _paging(f"{BASE}/approvals", page, {"webhook": hook_id})
    return render_page(
        "approvals.html",
        session=session,
        section="approvals",
        hooks=hooks,
        chosen=chosen[0] if chosen else None,
        calls=[(call, approval_call_json(call)) for call in calls],
        paging=paging,
    )


@router.get(f"{BASE}/emails")
async def emails_page(
    request: Request,
    next: Cursor = None,
    previous: Cursor = None,
    aviso: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    session = await session_of(request)
    if session is None:
        return to_login(back_to=request.url.path)
    c = session.container
    page_request = PageRequest(
        limit=PAGE_SIZE, next=next or None, previous=None if next else previous or None
    )
    try:
        page = await emails.list_caught(c.uow, session.tenant, page_request)
    except CajaError:
        page = await emails.list_caught(c.uow, session.tenant, PageRequest(limit=PAGE_SIZE))
    catcher = c.mail_catcher
    return render_page(
        "emails.html",
        session=session,
        section="emails",
        items=page.items,
        paging=_paging(f"{BASE}/emails", page),
        catcher=f"{catcher.host}:{catcher.port}" if catcher else None,
        notice=aviso,
    )


@router.post(f"{BASE}/emails/test")
async def send_test_email(request: Request) -> Response:
    session = await session_of(request)
    if session is None:
        return to_login()
    form = await _form(request)
    if not _checked(session, form):
        return render_page("missing.html", status=403, session=session, section="emails", what="formulario")
    c = session.container
    to = form.get("to", "").strip()
    try:
        await emails.send_test(c.uow, c.clock, session.tenant, to)
        notice = f"Correo de prueba enviado a {to}."
    except CajaError:
        notice = "Esa dirección de correo no es válida."
    return RedirectResponse(f"{BASE}/emails?{urlencode({'aviso': notice})}", status_code=303)


@router.get(f"{BASE}/emails/{{email_id}}")
async def email_page(request: Request, email_id: Id) -> Response:
    session = await session_of(request)
    if session is None:
        return to_login(back_to=request.url.path)
    try:
        email = await emails.get_caught(session.container.uow, session.tenant, email_id)
    except CajaError:
        return render_page("missing.html", status=404, session=session, section="emails", what="correo")
    return render_page("email.html", session=session, section="emails", email=email, parsed=email.parsed)


@router.get(f"{BASE}/emails/{{email_id}}/body")
async def email_body(request: Request, email_id: Id) -> Response:
    """The HTML part alone, for the sandboxed iframe: its own CSP makes it inert."""
    session = await session_of(request)
    if session is None:
        return Response(status_code=401)
    try:
        email = await emails.get_caught(session.container.uow, session.tenant, email_id)
    except CajaError:
        return Response(status_code=404)
    headers = no_store({"Content-Security-Policy": EMAIL_CSP})
    return HTMLResponse(email.parsed.html or "", headers=headers)


@router.get(f"{BASE}/assets/{{name}}")
async def asset(name: Annotated[str, PathParam(max_length=40)]) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:
        return Response(status_code=404)
    content = (_HERE / "static" / name).read_bytes()
    return Response(content, media_type=media_type, headers={"Cache-Control": "public, max-age=300"})
