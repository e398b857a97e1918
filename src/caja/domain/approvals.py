"""The synchronous approval contract of recurrent cash payments (seed page 000, "Responder a Webhooks").

Caja POSTs an ``inbound_payment.lookup`` or ``inbound_payment.payment_attempt`` event to the
merchant's synchronous webhook and has two seconds to hear back one of:

- ``{"payable": true}``, optionally with ``"min_amount"`` and ``"max_amount"`` in centavos;
- ``{"payable": false, "failure_code": "15"}``.

Anything else — no answer in time, an HTTP error, a body that is not that JSON — is a typed
failure, and the payment is declined.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

import orjson

LOOKUP = "inbound_payment.lookup"
PAYMENT_ATTEMPT = "inbound_payment.payment_attempt"
APPROVAL_EVENT_TYPES = frozenset({LOOKUP, PAYMENT_ATTEMPT})

# Conekta's decline codes are two digits ("01" .. "36"); a merchant may only answer with one.
_FAILURE_CODE = re.compile(r"[0-9]{2}")
# Centavos: far beyond any cash payment, still an exact integer everywhere (JSON, orjson, BIGINT).
# A store's amount beyond it is refused (422) rather than declined: it is not a payment at all.
MAX_AMOUNT = 10**12


@dataclass(frozen=True, slots=True)
class ApprovalReply:
    """The merchant's answer: payable or not, the accepted range, or why not."""

    payable: bool
    min_amount: int | None = None
    max_amount: int | None = None
    failure_code: str | None = None

    def allows(self, amount: int) -> bool:
        if not self.payable:
            return False
        if self.min_amount is not None and amount < self.min_amount:
            return False
        return self.max_amount is None or amount <= self.max_amount


class ApprovalFailureReason(enum.StrEnum):
    NO_WEBHOOK = "no_synchronous_webhook"
    TIMEOUT = "timeout"
    CONNECTION = "connection_error"
    HTTP_STATUS = "bad_http_status"
    BAD_JSON = "bad_json"
    OUT_OF_CONTRACT = "out_of_contract"


@dataclass(frozen=True, slots=True)
class ApprovalFailure:
    """No usable answer. ``detail`` says what went wrong, for logs and the dashboard."""

    reason: ApprovalFailureReason
    detail: str
    http_status: int | None = None
    webhook_id: str | None = None


ApprovalResult = ApprovalReply | ApprovalFailure


def _out(detail: str) -> ApprovalFailure:
    return ApprovalFailure(ApprovalFailureReason.OUT_OF_CONTRACT, detail)


def _amount(body: dict[str, Any], name: str) -> int | ApprovalFailure | None:
    value = body.get(name)
    if value is None:
        return None
    # bool is an int in Python and JSON true is not an amount; floats are not centavos.
    if isinstance(value, bool) or not isinstance(value, int):
        return _out(f"{name} must be an integer amount in centavos, got {value!r:.40}")
    if value < 0 or value > MAX_AMOUNT:
        return _out(f"{name} must be between 0 and {MAX_AMOUNT}, got {value}")
    return value


def parse_reply(body: bytes) -> ApprovalResult:
    """The merchant's reply body, checked against the contract."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ApprovalFailure(ApprovalFailureReason.BAD_JSON, f"the reply is not JSON: {body[:80]!r}")
    if not isinstance(data, dict):
        return _out("the reply must be a JSON object")
    payable = data.get("payable")
    if not isinstance(payable, bool):
        return _out('the reply must say "payable": true or false')
    failure_code = data.get("failure_code")
    if failure_code is not None and not (
        isinstance(failure_code, str) and _FAILURE_CODE.fullmatch(failure_code)
    ):
        return _out(f"failure_code must be a two-digit string, got {failure_code!r:.40}")
    if not payable:
        return ApprovalReply(payable=False, failure_code=failure_code)
    if failure_code is not None:
        return _out("a payable reply cannot carry a failure_code")
    low = _amount(data, "min_amount")
    if isinstance(low, ApprovalFailure):
        return low
    high = _amount(data, "max_amount")
    if isinstance(high, ApprovalFailure):
        return high
    if high == 0:
        # Nothing may be collected, whatever the minimum: no debt (``10``), not a broken reply.
        return ApprovalReply(payable=True, min_amount=None, max_amount=0)
    if low is not None and high is not None and low > high:
        return _out(f"min_amount {low} is greater than max_amount {high}")
    return ApprovalReply(payable=True, min_amount=low, max_amount=high)


def combine(replies: list[ApprovalReply]) -> ApprovalResult:
    """Several synchronous webhooks: every one must approve, and the amount must suit them all."""
    for reply in replies:
        if not reply.payable:
            return reply
    lows = [r.min_amount for r in replies if r.min_amount is not None]
    highs = [r.max_amount for r in replies if r.max_amount is not None]
    low = max(lows) if lows else None
    high = min(highs) if highs else None
    if high == 0:
        return ApprovalReply(payable=True, min_amount=None, max_amount=0)
    if low is not None and high is not None and low > high:
        return _out(f"the synchronous webhooks' ranges do not overlap ({low} > {high})")
    return ApprovalReply(payable=True, min_amount=low, max_amount=high)
