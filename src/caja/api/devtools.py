"""``/_caja/emails``: the messages the sandbox's built-in mail catcher received,
``/_caja/email_jobs``: the outbox jobs that send them, followed until they go out, and
``/_caja/webhooks/{id}/approval_calls``: what a synchronous webhook was asked and answered.

A sandbox and developer tool, not part of Conekta's API: only test private keys may use it
(a live key gets 403), and a caller sees only its own account's test-mode messages (tied to it
by the ``X-Caja-Job`` header Caja's mailer puts on each message), plus, for the sandbox
account, messages that came from anywhere else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field
from starlette.responses import Response

from caja.api.context import Merchant, MerchantDep, PageDep, body_of, list_body
from caja.api.merchant.schemas import EMAIL_DOC, StrictBody
from caja.api.openapi import bytes_answer, request_body
from caja.api.responses import ConektaJSON
from caja.domain.approval_log import approval_call_json
from caja.domain.email_jobs import EmailJob, message_status, seconds
from caja.domain.errors import ForbiddenError
from caja.domain.mail import CaughtEmail
from caja.domain.representations import JSON
from caja.services import emails, webhooks

router = APIRouter(tags=["Sandbox tools"])
EmailId = Annotated[str, Path(max_length=64, description="Caught e-mail id (msg_...)")]
EmailJobId = Annotated[str, Path(max_length=64, description="E-mail job id (eml_...)")]
WebhookId = Annotated[str, Path(max_length=64, description="Webhook id")]


async def test_merchant(merchant: MerchantDep) -> Merchant:
    if merchant.tenant.livemode:
        raise ForbiddenError.test_key_required()
    return merchant


TestMerchantDep = Annotated[Merchant, Depends(test_merchant)]


def caught_email_json(email: CaughtEmail, *, full: bool = False) -> JSON:
    parsed = email.parsed
    body: JSON = {
        "id": email.id,
        "object": "caught_email",
        "from": parsed.from_ or email.mail_from,
        "to": list(parsed.to or email.recipients),
        "subject": parsed.subject,
        "text": parsed.text,
        "html": parsed.html,
        "received_at": email.received_at,
        "envelope": {"mail_from": email.mail_from, "rcpt_to": list(email.recipients)},
        "job_id": email.job_id,
        "livemode": bool(email.livemode),
    }
    if full:
        body["headers"] = [{"name": name, "value": value} for name, value in parsed.headers]
    return body


def email_job_json(job: EmailJob) -> JSON:
    return {
        "id": job.id,
        "object": "email_job",
        "to": list(job.to),
        "template": job.template,
        "status": message_status(job.status),
        "attempts": job.attempts,
        "next_attempt_at": job.next_attempt_at,
        "last_attempted_at": seconds(job.last_attempted_at),
        "last_error": job.last_error,
        "created_at": seconds(job.created_at),
        "finished_at": seconds(job.finished_at),
        "caught_email_id": job.caught_email_id,
        "livemode": job.livemode,
    }


class TestEmailIn(StrictBody):
    to: Annotated[str, EMAIL_DOC] = Field(
        min_length=3, max_length=254, description="Where to send the test message"
    )


@router.get("/_caja/emails", summary="E-mails the built-in mail catcher received, newest first")
async def list_emails(request: Request, merchant: TestMerchantDep, page_request: PageDep) -> ConektaJSON:
    c = merchant.container
    page = await emails.list_caught(c.uow, merchant.tenant, page_request)
    return merchant.respond(list_body(request, page, [caught_email_json(e) for e in page.items]))


@router.post(
    "/_caja/emails",
    summary="Send the generic test e-mail through the outbox",
    openapi_extra=request_body(TestEmailIn),
)
async def send_test_email(request: Request, merchant: TestMerchantDep) -> ConektaJSON:
    body = await body_of(request, TestEmailIn)
    c = merchant.container
    job = await emails.send_test(c.uow, c.clock, merchant.tenant, body.to)
    return merchant.respond(email_job_json(job))


@router.get("/_caja/email_jobs/{id}", summary="One e-mail job: whether its message went out, and as which")
async def get_email_job(id: EmailJobId, merchant: TestMerchantDep) -> ConektaJSON:
    c = merchant.container
    return merchant.respond(email_job_json(await emails.get_email_job(c.uow, merchant.tenant, id)))


@router.get("/_caja/emails/{id}", summary="One caught e-mail, parsed")
async def get_email(id: EmailId, merchant: TestMerchantDep) -> ConektaJSON:
    c = merchant.container
    email = await emails.get_caught(c.uow, merchant.tenant, id)
    return merchant.respond(caught_email_json(email, full=True))


@router.get(
    "/_caja/emails/{id}/raw",
    summary="One caught e-mail as received (message/rfc822)",
    response_class=Response,
    responses=bytes_answer("message/rfc822", "The message as received"),
)
async def get_raw_email(id: EmailId, merchant: TestMerchantDep) -> Response:
    c = merchant.container
    email = await emails.get_caught(c.uow, merchant.tenant, id)
    return Response(email.message, media_type="message/rfc822")


@router.get(
    "/_caja/webhooks/{id}/approval_calls",
    summary="A synchronous webhook's approval calls, newest first: what Caja sent, what came back",
)
async def list_approval_calls(
    request: Request, id: WebhookId, merchant: TestMerchantDep, page_request: PageDep
) -> ConektaJSON:
    c = merchant.container
    page = await webhooks.approval_calls(c.uow, c.secret_box, merchant.tenant, id, page_request)
    return merchant.respond(list_body(request, page, [approval_call_json(call) for call in page.items]))
