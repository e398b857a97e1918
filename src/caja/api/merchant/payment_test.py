"""``POST /payment_test``: simulate a store looking up, paying or reversing a reference (test keys)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BeforeValidator, Field, StringConstraints

from caja.api.context import MerchantDep, body_of
from caja.api.merchant.schemas import StrictBody
from caja.api.network import StoreName
from caja.api.openapi import errors, request_body
from caja.api.responses import ConektaJSON
from caja.domain.approvals import MAX_AMOUNT
from caja.domain.cash_payments import parse_amount
from caja.services import payment_test
from caja.services.payment_test import PaymentTest, TestEvent

router = APIRouter(tags=["Sandbox"])


def _amount(value: object) -> object:
    # The seed sends "10000" (a string); a number is accepted too. Anything else fails as an int.
    parsed = parse_amount(value)
    return parsed if parsed is not None else value


class PaymentTestIn(StrictBody):
    event_type: TestEvent
    reference: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")]
    amount: Annotated[int, BeforeValidator(_amount)] | None = Field(
        default=None,
        ge=-MAX_AMOUNT,
        le=MAX_AMOUNT,
        description="Centavos, as an integer or a numeric string (required for payment_attempt)",
    )
    store_name: StoreName = payment_test.DEFAULT_STORE


@router.post(
    "/payment_test",
    summary="Drive the store network path with a simulated store (test keys only)",
    openapi_extra=request_body(PaymentTestIn),
    responses=errors(403, 404),
)
async def run_payment_test(request: Request, merchant: MerchantDep) -> ConektaJSON:
    body = await body_of(request, PaymentTestIn)
    answer = await payment_test.run(
        merchant.container.cash_desk,
        merchant.container.secret_box,
        merchant.tenant,
        PaymentTest(
            event_type=body.event_type, reference=body.reference, amount=body.amount, store=body.store_name
        ),
    )
    return merchant.respond(answer)
