"""Unauthenticated routes: process health, readiness, and barcode images for payers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from caja.api.context import container_of
from caja.api.openapi import bytes_answer
from caja.domain.errors import ResourceNotFoundError
from caja.domain.payment_sources import PaymentSourceStatus, PaymentSourceType
from caja.services import payment_sources, readiness

router = APIRouter(tags=["Operations"])


@router.get("/health", summary="The process is up")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/ready", summary="The database answers and its schema is current")
async def ready(request: Request) -> JSONResponse:
    report = await readiness.check(container_of(request).database)
    return JSONResponse(report.as_json(), status_code=200 if report.ready else 503)


@router.get(
    "/barcodes/{reference}.png",
    tags=["Payer pages"],
    summary="Code 128 image of a recurrent cash reference",
    response_class=Response,
    responses=bytes_answer("image/png", "The barcode (PNG)"),
)
async def barcode(request: Request, reference: Annotated[str, Path(pattern=r"^[0-9]{10,30}$")]) -> Response:
    container = container_of(request)
    source = await payment_sources.find_by_reference(container.uow, reference)
    # A retired reference (its source or customer deleted) must not look payable on any page.
    if (
        source is None
        or source.type is not PaymentSourceType.CASH_RECURRENT
        or source.status is not PaymentSourceStatus.ACTIVE
    ):
        raise ResourceNotFoundError.entity("Barcode", reference)
    png = await run_in_threadpool(container.barcodes.png, reference)
    return Response(png, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"})
