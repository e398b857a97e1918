"""The log of a synchronous webhook's approval calls, as a merchant debugging it reads them.

Each ``inbound_payment.lookup`` or ``inbound_payment.payment_attempt`` call is recorded as a
finished ``approval`` job with its one attempt (``delivery/approvals.py``): the envelope sent and
what came back. This turns that record into what the call was about (type, reference, amount),
how it went (the merchant's reply as Caja read it, or why none counted) and the raw exchange.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from caja.domain.approvals import ApprovalReply, parse_reply
from caja.domain.jobs import Attempt, Job, JobStatus


@dataclass(frozen=True, slots=True)
class ApprovalCall:
    job: Job
    attempt: Attempt | None  # None only if the attempt's row is missing (never written by Caja)

    @property
    def id(self) -> str:
        """The call's job id: what a list's cursor names."""
        return self.job.id

    @property
    def envelope(self) -> dict[str, Any]:
        body = self.attempt.request_body if self.attempt is not None else None
        try:
            parsed = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    @property
    def reply(self) -> ApprovalReply | None:
        """The reply as Caja read it; None when none counted (see ``error``)."""
        if self.job.status is not JobStatus.SUCCEEDED or self.attempt is None:
            return None
        parsed = parse_reply((self.attempt.response_body or "").encode("utf-8"))
        return parsed if isinstance(parsed, ApprovalReply) else None


def _reply_json(reply: ApprovalReply | None) -> dict[str, Any] | None:
    if reply is None:
        return None
    if not reply.payable:
        return {"payable": False, "failure_code": reply.failure_code}
    return {"payable": True, "min_amount": reply.min_amount, "max_amount": reply.max_amount}


def approval_call_json(call: ApprovalCall) -> dict[str, Any]:
    envelope = call.envelope
    data = envelope.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    obj = obj if isinstance(obj, dict) else {}
    method = obj.get("payment_method")
    method = method if isinstance(method, dict) else {}
    attempt = call.attempt
    return {
        "id": call.job.id,
        "object": "approval_call",
        "webhook_id": call.job.webhook_id,
        "type": envelope.get("type"),
        "reference": method.get("reference"),
        "amount": obj.get("amount"),
        "charge_id": obj.get("charge_id"),
        "store_name": method.get("store_name"),
        "created_at": call.job.created_at // 1000,
        "url": attempt.url if attempt is not None else None,
        "duration_ms": attempt.duration_ms if attempt is not None else None,
        "http_status": attempt.http_status if attempt is not None else None,
        # What counted: the reply as read, or why there was none (the store was told 19).
        "reply": _reply_json(call.reply),
        "error": attempt.error if attempt is not None else None,
        "request_body": attempt.request_body if attempt is not None else None,
        "response_body": attempt.response_body if attempt is not None else None,
        "livemode": call.job.livemode,
    }
