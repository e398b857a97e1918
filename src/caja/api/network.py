"""The network API: what a store network (cash aggregator) calls at the point of sale.

Every call but the failure-code table is signed with the network's HMAC secret
(``caja.domain.networks``; protocol in docs/network-api.md). Declines are ordinary answers
(HTTP 200, ``payable: false`` or ``status: declined`` with a failure code); HTTP errors mean the
request itself was wrong (401 signature, 422 body, 404 unknown payment, 409 reused transaction).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.responses import Response

from caja import metrics, timing
from caja.admission import Admitted
from caja.api.context import container_of
from caja.api.errors import from_validation
from caja.api.openapi import errors, request_body
from caja.bootstrap import Container
from caja.domain.approvals import MAX_AMOUNT
from caja.domain.failure_codes import FAILURE_DESCRIPTIONS
from caja.domain.networks import HEADER_NETWORK, HEADER_SIGNATURE, HEADER_TIMESTAMP, Network
from caja.services import cash_payments

router = APIRouter(prefix="/network/v1", tags=["Network API (store networks)"])

Reference = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")]
# Printed on charges, receipts and slips: no control characters (and PostgreSQL text holds no NUL).
StoreName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
Token = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]


class NetworkBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LookupIn(NetworkBody):
    reference: Reference
    store: StoreName = Field(description="Store (chain) name shown to the merchant and on the charge")
    cashier: Token | None = None


class PaymentIn(NetworkBody):
    reference: Reference
    amount: int = Field(
        ge=-MAX_AMOUNT,
        le=MAX_AMOUNT,
        description="Centavos collected from the payer (0 or less is declined with 02, not refused)",
    )
    store: StoreName
    transaction_id: Token = Field(description="The store's own id of this transaction: the idempotency key")
    cashier: Token | None = None
    lookup_id: Token | None = Field(default=None, description="The lookup this payment follows (optional)")


class ReversalIn(NetworkBody):
    authorization_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")]


class NetworkJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _answer(content: Any, started: float, spent: timing.RequestTiming) -> NetworkJSON:
    """The answer, with ``Server-Timing``: milliseconds spent waiting for the merchant, Caja's own,
    and the part of Caja's own spent in units of work (``db``)."""
    total = time.perf_counter() - started
    own = max(total - spent.merchant_seconds, 0.0)
    header = (
        f"merchant;dur={spent.merchant_seconds * 1000:.2f}, caja;dur={own * 1000:.2f}, "
        f"db;dur={min(spent.store_seconds, own) * 1000:.2f}"
    )
    return NetworkJSON(content, headers={"Server-Timing": header})


class SignedCall:
    """What authenticating a network call needs: its method, path, three headers and exact bytes."""

    __slots__ = ("body", "method", "network_id", "path", "signature", "timestamp")

    def __init__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.network_id = headers.get(HEADER_NETWORK)
        self.timestamp = headers.get(HEADER_TIMESTAMP)
        self.signature = headers.get(HEADER_SIGNATURE)


async def _signed(container: Container, call: SignedCall, model: type[NetworkBody]) -> tuple[Network, Any]:
    """Authenticate the exact bytes first; only a genuine request gets its body validated."""
    network = await container.networks.authenticate(
        call.network_id, call.timestamp, call.signature, call.method, call.path, call.body
    )
    try:
        return network, model.model_validate_json(call.body)
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None


async def _request_call(request: Request) -> SignedCall:
    return SignedCall(request.method, request.url.path, request.headers, await request.body())


async def answer_lookup(container: Container, call: SignedCall) -> NetworkJSON:
    started, spent = time.perf_counter(), timing.start()
    async with Admitted(container.store_calls):
        network, body = await _signed(container, call, LookupIn)
        outcome = await cash_payments.lookup(
            container.cash_desk,
            network,
            cash_payments.LookupRequest(reference=body.reference, store=body.store, cashier=body.cashier),
        )
        answer = outcome.as_json()
        metrics.count_store_call("lookup", answer)
        return _answer(answer, started, spent)


async def answer_payment(container: Container, call: SignedCall) -> NetworkJSON:
    started, spent = time.perf_counter(), timing.start()
    async with Admitted(container.store_calls):
        network, body = await _signed(container, call, PaymentIn)
        outcome = await cash_payments.pay(
            container.cash_desk,
            network,
            cash_payments.PaymentRequest(
                reference=body.reference,
                amount=body.amount,
                store=body.store,
                transaction_id=body.transaction_id,
                cashier=body.cashier,
                lookup_id=body.lookup_id,
            ),
        )
        metrics.count_store_call("payment", outcome.body)
        return _answer(outcome.body, started, spent)


# The two calls of every payment at the till, served by caja.api.network_fast ahead of the
# framework's layers; the routes below describe them in the OpenAPI document and serve them
# wherever the fast path is not in front (the same code either way).
FAST_CALLS: dict[str, Callable[[Container, SignedCall], Awaitable[NetworkJSON]]] = {
    f"{router.prefix}/lookups": answer_lookup,
    f"{router.prefix}/payments": answer_payment,
}


@router.post(
    "/lookups",
    summary="Look up a reference: payable, and for which amounts",
    openapi_extra=request_body(LookupIn),
)
async def lookup(request: Request) -> NetworkJSON:
    return await answer_lookup(container_of(request), await _request_call(request))


@router.post(
    "/payments",
    summary="Pay a reference (idempotent on transaction_id)",
    openapi_extra=request_body(PaymentIn),
    responses=errors(404, 409),
)
async def pay(request: Request) -> NetworkJSON:
    return await answer_payment(container_of(request), await _request_call(request))


@router.post(
    "/reversals",
    summary="Reverse a payment by its authorization code",
    openapi_extra=request_body(ReversalIn),
    responses=errors(404),
)
async def reverse(request: Request) -> NetworkJSON:
    container = container_of(request)
    network, body = await _signed(container, await _request_call(request), ReversalIn)
    charge = await cash_payments.reverse(container.cash_desk, network, int(body.authorization_code))
    answer = cash_payments.reversal_json(charge)
    metrics.count_store_call("reversal", answer)
    return NetworkJSON(answer)


@router.get("/failure_codes", summary="The decline codes a cashier may see, with their descriptions")
async def failure_codes() -> NetworkJSON:
    return NetworkJSON(
        {
            "object": "list",
            "data": [
                {"failure_code": d.code.value, "description": d.message_es, "description_en": d.message_en}
                for d in FAILURE_DESCRIPTIONS.values()
            ],
        }
    )
