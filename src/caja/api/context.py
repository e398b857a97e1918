"""What every merchant request resolves before its handler runs: who asks, in which version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from pydantic import BaseModel, ValidationError

from caja.api.auth import presented_key
from caja.api.errors import from_validation
from caja.api.responses import ConektaJSON
from caja.api.versioning import negotiate
from caja.bootstrap import Container
from caja.domain.errors import ParameterValidationError, ResourceNotFoundError
from caja.domain.paging import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest
from caja.domain.representations import JSON
from caja.domain.tenancy import Tenant


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


@dataclass(frozen=True, slots=True)
class Merchant:
    tenant: Tenant
    version: str
    container: Container

    def respond(self, body: Any) -> ConektaJSON:
        return ConektaJSON(body, version=self.version)


async def merchant(request: Request) -> Merchant:
    container = container_of(request)
    # Authentication first: an anonymous caller learns nothing, not even which versions exist.
    tenant = await container.keys.tenant(presented_key(request.headers.get("authorization")))
    _refuse_nul(request)
    return Merchant(tenant=tenant, version=negotiate(request.headers.get("accept")), container=container)


def _refuse_nul(request: Request) -> None:
    """PostgreSQL text cannot hold NUL: a NUL in an id or a query never reaches the database."""
    path: str = request.scope["path"]
    if "\x00" in path:
        raise ResourceNotFoundError.route(path)
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            param = name.replace("\x00", "")
            raise ParameterValidationError.invalid(param, "NUL characters are not allowed.")


MerchantDep = Annotated[Merchant, Depends(merchant)]

Body = TypeVar("Body", bound=BaseModel)


async def body_of(request: Request, model: type[Body]) -> Body:
    """Validate the JSON body straight from its bytes (pydantic's fastest path)."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1 to 250)")] = DEFAULT_LIMIT,
    search: Annotated[str | None, Query(max_length=200, description="Free-text search")] = None,
    next: Annotated[
        str | None, Query(max_length=64, description="Id of the last item seen: older items")
    ] = None,
    previous: Annotated[
        str | None, Query(max_length=64, description="Id of the first item seen: newer items")
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, next=next or None, previous=previous or None, search=search or None)


PageDep = Annotated[PageRequest, Depends(page_request)]


def list_body(
    request: Request, page: Page[Any], data: list[JSON], filters: dict[str, str | None] | None = None
) -> JSON:
    """The list envelope; ``filters`` (a resource's own query parameters) carry over to page links."""
    base = f"{str(request.base_url).rstrip('/')}{request.url.path}"

    def url(cursor_name: str, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        query: dict[str, str | int] = {"limit": page.request.limit}
        if page.request.search:
            query["search"] = page.request.search
        for name, value in (filters or {}).items():
            if value:
                query[name] = value
        query[cursor_name] = cursor
        return f"{base}?{urlencode(query)}"

    return {
        "object": "list",
        "has_more": page.has_more,
        "next_page_url": url("next", page.next_cursor),
        "previous_page_url": url("previous", page.previous_cursor),
        "data": data,
    }
