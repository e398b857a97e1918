"""Errors the HTTP framework raises itself become Conekta error objects, in the caller's language."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.exceptions import HTTPException

from caja.api.errors import install
from tests.checks import assert_error_envelope


def app_raising(status: int, detail: str) -> FastAPI:
    app = FastAPI()
    install(app)

    @app.post("/raises")
    async def raises() -> None:
        raise HTTPException(status_code=status, detail=detail)

    return app


async def call(app: FastAPI, language: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://caja") as client:
        return await client.post("/raises", headers={"Accept-Language": language})


async def test_a_request_the_framework_cannot_read_is_a_request_error() -> None:
    app = app_raising(400, "There was an error parsing the body")
    english, spanish = await call(app, "en"), await call(app, "es")
    for response in (english, spanish):
        assert response.status_code == 400
        body = response.json()
        assert_error_envelope(body)
        assert body["type"] == "request_error"
        (detail,) = body["details"]
        assert detail["code"] == "conekta.errors.request.invalid"
        assert detail["debug_message"] == "There was an error parsing the body"
    assert english.json()["details"][0]["message"] == "The request is not valid."
    assert spanish.json()["details"][0]["message"] == "La solicitud no es válida."


async def test_unknown_routes_and_methods_keep_their_own_errors() -> None:
    app = app_raising(400, "unused")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://caja") as client:
        missing = await client.get("/nowhere")
        wrong = await client.get("/raises")
    assert missing.status_code == 404 and missing.json()["type"] == "resource_not_found_error"
    assert wrong.status_code == 405
    assert_error_envelope(wrong.json())
