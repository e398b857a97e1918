"""The one place where exceptions become Conekta error objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

from caja.api.responses import ConektaJSON
from caja.api.versioning import lenient
from caja.domain.errors import (
    CajaError,
    ErrorDetail,
    InternalError,
    MalformedRequestError,
    MethodNotAllowedError,
    ParameterValidationError,
    RequestError,
    ResourceNotFoundError,
    code_path,
    validation_code,
)
from caja.domain.ids import new_log_id

log = structlog.get_logger("caja.api")

# Conekta parameters that Caja knows of but does not implement; naming them gets a clear answer.
UNSUPPORTED_PARAMS = frozenset(
    {"shipping_contacts", "fiscal_entities", "plan_id", "subscription", "default_shipping_contact_id"}
)


def error_body(error: CajaError, language: str, log_id: str) -> dict[str, Any]:
    english = language.lower().startswith("en")
    return {
        "object": "error",
        "type": error.error_type,
        "log_id": log_id,
        "details": [_detail(d, english) for d in error.details],
    }


def _detail(detail: ErrorDetail, english: bool) -> dict[str, Any]:
    return {
        "code": detail.code,
        "param": detail.param,
        "message": detail.message_en if english else detail.message_es,
        "debug_message": detail.debug_message,
    }


def render(request: Request, error: CajaError) -> Response:
    log_id = new_log_id()
    if error.http_status >= 500:
        log.error("request_failed", log_id=log_id, path=request.url.path, error_type=error.error_type)
    body = error_body(error, request.headers.get("accept-language", "es"), log_id)
    return ConektaJSON(body, version=lenient(request.headers.get("accept")), status_code=error.http_status)


def _param(loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(item)
    return ".".join(parts)


def from_validation(errors: Sequence[Any]) -> CajaError:
    details: list[ErrorDetail] = []
    for err in errors:
        kind = str(err.get("type", ""))
        loc = [p for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        if kind == "json_invalid":
            return MalformedRequestError.bad_json(str(err.get("ctx", {}).get("error", "invalid JSON")))
        if not loc and kind in {"model_attributes_type", "dict_type", "model_type", "missing"}:
            return MalformedRequestError.bad_json("the body must be a JSON object")
        param = _param(loc)
        details.append(_validation_detail(param, kind, str(err.get("msg", ""))))
    return ParameterValidationError(details)


def _validation_detail(param: str, kind: str, msg: str) -> ErrorDetail:
    leaf = code_path(param).rsplit(".", 1)[-1]
    if kind == "missing":
        return ErrorDetail(
            validation_code(param, "missing"),
            f"El parámetro {leaf} es requerido.",
            f"The parameter {leaf} is required.",
            f'The "{param}" parameter is missing.',
            param,
        )
    if kind == "extra_forbidden":
        if leaf in UNSUPPORTED_PARAMS:
            return ErrorDetail(
                validation_code(param, "unsupported"),
                f"Caja no soporta el parámetro {leaf}.",
                f"Caja does not support the parameter {leaf}.",
                f'The "{param}" parameter is part of Conekta\'s API but not implemented by Caja.',
                param,
            )
        return ErrorDetail(
            validation_code(param, "unknown"),
            f"El parámetro {leaf} no es reconocido.",
            f"The parameter {leaf} is not recognised.",
            f'The "{param}" parameter is unknown.',
            param,
        )
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return ErrorDetail(
            validation_code(param, "invalid_datatype"),
            f"El parámetro {leaf} es inválido.",
            f"The parameter {leaf} is invalid.",
            f'The "{param}" parameter has the wrong data type: {msg}',
            param,
        )
    return ErrorDetail(
        validation_code(param, "invalid"),
        f"El parámetro {leaf} es inválido.",
        f"The parameter {leaf} is invalid.",
        f'The "{param}" parameter is invalid: {msg}',
        param,
    )


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header a 405 must carry (RFC 9110): every method some route takes on this path.

    Starlette's own lists only the first route that matched the path, and FastAPI makes one
    route per method: for ``DELETE /customers`` it would name GET but not POST.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods.update(route_methods)
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    async def on_caja_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CajaError)
        return render(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(request, from_validation(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return render(request, ResourceNotFoundError.route(request.url.path))
        if exc.status_code == 405:
            response = render(request, MethodNotAllowedError.for_method(request.method, request.url.path))
            response.headers["Allow"] = allowed_methods(request)
            return response
        return render(request, RequestError.malformed(str(exc.detail)))

    async def on_client_gone(request: Request, exc: Exception) -> Response:
        # The client hung up while sending its body: nobody is left to answer, nothing was done.
        log.debug("client_disconnected", path=request.url.path)
        return Response(status_code=499)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", path=request.url.path, exc_type=type(exc).__name__)
        return render(request, InternalError.general())

    app.add_exception_handler(CajaError, on_caja_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(Exception, on_unexpected)
