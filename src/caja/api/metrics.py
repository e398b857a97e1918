"""``GET /metrics``: Prometheus's scrape, for the operator's token only (docs/operations.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from caja import metrics
from caja.api.auth import check_admin_token
from caja.api.context import container_of
from caja.api.openapi import bytes_answer
from caja.bootstrap import Container
from caja.services import metrics as scrapes

router = APIRouter(tags=["Operations"])


async def admin(request: Request) -> Container:
    container = container_of(request)
    check_admin_token(request.headers.get("authorization"), container.settings.admin_token)
    return container


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process, and the outbox's backlog",
    responses=bytes_answer("text/plain", "Prometheus's text format, version 0.0.4"),
)
async def scrape(container: Annotated[Container, Depends(admin)]) -> Response:
    body = await scrapes.scrape(container.uow, container.clock)
    return Response(body, media_type=metrics.CONTENT_TYPE)
