"""Caja's OpenAPI document: what FastAPI generates, completed with what it cannot know.

- Request bodies that handlers parse themselves: hot handlers read their body with
  ``api.context.body_of`` (pydantic straight from the JSON bytes, skipping FastAPI's slower body
  machinery); ``request_body(Model)`` keeps such a body in the document as if FastAPI had parsed it.
- Errors: every error is a Conekta error object (``api.errors``), not FastAPI's
  ``HTTPValidationError``. Each operation lists the statuses it can answer with one: those that
  follow from its shape (a key or a network signature to check, path parameters to find, a body
  to parse) and those its route names with ``errors(...)``.
- Media types: Conekta's API answers in the version the request's ``Accept`` names
  (``application/vnd.conekta-v2.3.0+json`` and earlier), and so does every route whose handler
  answers ``ConektaJSON``, and every error.
- Security: merchant routes take a private API key (Bearer or Basic); the store network's routes
  take their HMAC signature headers (docs/network-api.md).
"""

from __future__ import annotations

import typing
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from caja.api.responses import ConektaJSON
from caja.api.versioning import SUPPORTED_MINORS, media_type
from caja.domain.networks import HEADER_NETWORK, HEADER_SIGNATURE, HEADER_TIMESTAMP

_REF = "#/components/schemas/{model}"
_ERROR_REF = {"$ref": _REF.format(model="Error")}
_documented: dict[str, type[BaseModel]] = {}

# The media types of Conekta's answers, newest first.
CONEKTA_MEDIA_TYPES = tuple(media_type(f"2.{minor}.0") for minor in sorted(SUPPORTED_MINORS, reverse=True))

_STATUS_MEANINGS = {
    400: "The body is not JSON, or the request is otherwise unreadable "
    "(`request_error`, `parameter_validation_error`)",
    401: "No valid API key, network signature or operator's token (`authentication_error`)",
    403: "A live key on a sandbox-only route, or an operator's route with no token configured "
    "(`authentication_error`)",
    404: "No such object for this key's account and mode (`resource_not_found_error`)",
    406: "`Accept` names an API version Caja does not speak (`parameter_validation_error`)",
    409: "A concurrent or conflicting request won (`conflict_error`)",
    413: "The body is larger than Caja accepts (`request_error`)",
    422: "A parameter is missing, unknown or invalid, or the request cannot be processed "
    "(`parameter_validation_error`, `processing_error`)",
    500: "Caja failed; the error's `log_id` finds it in the server's log (`api_error`)",
    503: "The database is unavailable; retry later (`api_error`)",
}

# The Conekta error object every error response carries (api.errors.error_body).
_ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["object", "type", "log_id", "details"],
    "properties": {
        "object": {"const": "error"},
        "type": {"type": "string", "description": "authentication_error, parameter_validation_error, …"},
        "log_id": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "message", "debug_message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "examples": ["conekta.errors.parameter_validation.email.invalid"],
                    },
                    "param": {"type": ["string", "null"]},
                    "message": {
                        "type": "string",
                        "description": "For the payer: Spanish, or English with `Accept-Language: en`",
                    },
                    "debug_message": {"type": "string", "description": "For the developer"},
                },
            },
        },
    },
}

_SECURITY_SCHEMES = {
    "apiKey": {"type": "http", "scheme": "bearer", "description": "A private API key (`key_…`)"},
    "apiKeyBasic": {"type": "http", "scheme": "basic", "description": "The private API key as the user name"},
    "adminToken": {"type": "http", "scheme": "bearer", "description": "The operator's `CAJA_ADMIN_TOKEN`"},
    "networkSignature": {
        "type": "apiKey",
        "in": "header",
        "name": HEADER_SIGNATURE,
        "description": f"HMAC-SHA256 of the request with the network's secret, beside `{HEADER_NETWORK}` and "
        f"`{HEADER_TIMESTAMP}` (docs/network-api.md)",
    },
}


# OpenAPI links: which answers name the objects that other operations take (a created
# customer's id, the first id of a list), for readers and for tools that chain calls.
_ID = "$response.body#/id"
_FIRST_ID = "$response.body#/data/0/id"
_ONE = ("get", "put", "delete")
_LINKS: dict[tuple[str, str], list[tuple[str, str, dict[str, str]]]] = {
    ("post", "/customers"): [
        *((method, "/customers/{id}", {"id": _ID}) for method in _ONE),
        ("get", "/customers/{id}/payment_sources", {"id": _ID}),
        ("post", "/customers/{id}/payment_sources", {"id": _ID}),
    ],
    ("get", "/customers"): [("get", "/customers/{id}", {"id": _FIRST_ID})],
    ("post", "/customers/{id}/payment_sources"): [
        (method, "/customers/{id}/payment_sources/{source_id}", {"id": "$request.path.id", "source_id": _ID})
        for method in _ONE
    ],
    ("post", "/webhooks"): [
        *((method, "/webhooks/{id}", {"id": _ID}) for method in _ONE),
        ("post", "/webhooks/{id}/test", {"id": _ID}),
    ],
    ("post", "/webhook_keys"): [(method, "/webhook_keys/{id}", {"id": _ID}) for method in _ONE],
    ("get", "/events"): [
        ("get", "/events/{id}", {"id": _FIRST_ID}),
        ("post", "/events/{event_id}/resend", {"event_id": _FIRST_ID}),
    ],
    ("get", "/orders"): [("get", "/orders/{id}", {"id": _FIRST_ID})],
    ("get", "/charges"): [("get", "/charges/{id}", {"id": _FIRST_ID})],
    # No link from the caught e-mails' list: what it holds depends on how far the dispatcher has
    # got, and a link whose target comes and goes makes generated chains of calls differ by run.
    ("post", "/_caja/emails"): [("get", "/_caja/email_jobs/{id}", {"id": _ID})],
}


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose handler parses ``model`` itself."""
    _documented[model.__name__] = model
    schema = {"$ref": _REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def bytes_answer(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """``responses`` for a route whose success is not JSON (an image, a raw message)."""
    return {200: {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` for a route: error statuses its shape alone does not imply (see the module's notes)."""
    return {status: {"description": _STATUS_MEANINGS[status]} for status in statuses}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = document.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            for name, model in _documented.items():
                schema = model.model_json_schema(ref_template=_REF)
                schemas.update(schema.pop("$defs", {}))
                schemas[name] = schema
            schemas["Error"] = _ERROR_SCHEMA
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            components["securitySchemes"] = _SECURITY_SCHEMES
            for route in app.routes:
                if isinstance(route, APIRoute) and route.include_in_schema:
                    for method in route.methods or ():
                        _complete(document["paths"][route.path_format][method.lower()], route)
            _link(document["paths"])
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(operation: dict[str, Any], route: APIRoute) -> None:
    """The operation's errors, media types and security, from the route's shape."""
    merchant = _calls(route.dependant, "merchant")
    network = route.path_format.startswith("/network/") and "POST" in (route.methods or ())
    statuses = {500, 503}
    if merchant:
        statuses |= {401, 406}
        operation["security"] = [{"apiKey": []}, {"apiKeyBasic": []}]
    if network:
        statuses.add(401)
        operation["security"] = [{"networkSignature": []}]
    if _calls(route.dependant, "test_merchant"):
        statuses.add(403)
    if _calls(route.dependant, "admin"):
        statuses |= {401, 403}
        operation["security"] = [{"adminToken": []}]
    if route.dependant.path_params:
        statuses |= {404, 422}
    if route.dependant.query_params:
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    responses: dict[str, Any] = operation["responses"]
    statuses |= {int(status) for status in responses if status.startswith(("4", "5"))}
    for code in sorted(statuses):
        responses[str(code)] = {
            "description": _STATUS_MEANINGS[code],
            "content": {media: {"schema": _ERROR_REF} for media in CONEKTA_MEDIA_TYPES},
        }
    if _answers_conekta_json(route):
        for status, response in responses.items():
            content = response.get("content", {})
            if status.startswith("2") and "application/json" in content:
                schema = content.pop("application/json")
                content.update({media: schema for media in CONEKTA_MEDIA_TYPES})


def _calls(dependant: Dependant, name: str) -> bool:
    """Whether the route depends, directly or not, on the function called ``name``."""
    return any(
        getattr(sub.call, "__name__", None) == name or _calls(sub, name) for sub in dependant.dependencies
    )


def _answers_conekta_json(route: APIRoute) -> bool:
    try:
        answers = typing.get_type_hints(route.endpoint).get("return")
    except NameError:  # an annotation that does not resolve: not ours to document
        return False
    return isinstance(answers, type) and issubclass(answers, ConektaJSON)


def _link(paths: dict[str, Any]) -> None:
    for (method, path), targets in _LINKS.items():
        links = paths[path][method]["responses"]["200"].setdefault("links", {})
        for target_method, target_path, parameters in targets:
            assert target_method in paths[target_path], (target_method, target_path)
            pointer = target_path.replace("~", "~0").replace("/", "~1")
            name = f"{target_method}{target_path}".replace("/", "_").replace("{", "").replace("}", "")
            links[name] = {"operationRef": f"#/paths/{pointer}/{target_method}", "parameters": parameters}
