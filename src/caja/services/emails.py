"""E-mail through the outbox, and the messages the sandbox's mail catcher received.

Sending never happens inside a request: a service enqueues an ``email`` job (a template, the
recipients and the values to fill it with) in the caller's unit of work, in the same transaction
as the state change it tells about (a paid charge and its receipt commit together or not at
all). The dispatcher renders and sends it with the ``email`` handler (``caja.delivery.mail``),
recording each attempt and retrying like any job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from caja.domain import ids
from caja.domain.clock import Clock
from caja.domain.email_jobs import EmailJob
from caja.domain.errors import ParameterValidationError, ResourceNotFoundError
from caja.domain.jobs import JobKind, JobStatus
from caja.domain.mail import CAUGHT_EMAIL_PREFIX, EMAIL_JOB_PREFIX, CaughtEmail, TemplatedEmail, parse_message
from caja.domain.paging import Page, PageRequest
from caja.domain.stores import STORE_NAMES
from caja.domain.tenancy import Tenant
from caja.store.caught_emails import to_caught_email
from caja.store.jobs import NewJob
from caja.store.uow import UnitOfWork, UnitOfWorkFactory
from caja.web.emails import PAYMENT_RECEIPT, TEST_MESSAGE, WITHDRAWAL_REFERENCE, templated


@dataclass(frozen=True, slots=True)
class PaymentReceipt:
    """The payer's "Pago exitoso" receipt for a recurrent cash payment."""

    to: str
    merchant_name: str
    amount: int  # centavos
    reference: str
    store: str
    paid_at: int  # epoch seconds
    authorization_code: str
    customer_name: str | None = None
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class WithdrawalNotice:
    """The payout beneficiary's withdrawal reference."""

    to: str
    merchant_name: str
    amount: int  # centavos
    reference: str
    expires_at: int | None = None  # epoch seconds
    store_names: tuple[str, ...] = field(default=STORE_NAMES)
    beneficiary_name: str | None = None
    payout_order_id: str | None = None
    barcode_url: str | None = None


async def enqueue(tx: UnitOfWork, tenant: Tenant, now_ms: int, email: TemplatedEmail) -> str:
    """Add an ``email`` job to the caller's transaction; it is sent once that commits. Its id."""
    job = email_job(tenant, now_ms, email)
    await tx.jobs.enqueue(job)
    return job.id


def email_job(tenant: Tenant, now_ms: int, email: TemplatedEmail) -> NewJob:
    """The ``email`` job that sends this message, due now."""
    return NewJob(
        id=ids.new_ordered_id(EMAIL_JOB_PREFIX),
        kind=JobKind.EMAIL.value,
        account_id=tenant.account_id,
        livemode=tenant.livemode,
        payload=email.as_payload(),
        run_at=now_ms,
        created_at=now_ms,
    )


async def enqueue_payment_receipt(
    tx: UnitOfWork, tenant: Tenant, now_ms: int, receipt: PaymentReceipt
) -> str:
    job = payment_receipt_job(tenant, now_ms, receipt)
    await tx.jobs.enqueue(job)
    return job.id


def payment_receipt_job(tenant: Tenant, now_ms: int, receipt: PaymentReceipt) -> NewJob:
    email = templated(
        PAYMENT_RECEIPT,
        [receipt.to],
        {
            "merchant_name": receipt.merchant_name,
            "amount": receipt.amount,
            "reference": receipt.reference,
            "store": receipt.store,
            "paid_at": receipt.paid_at,
            "authorization_code": receipt.authorization_code,
            "customer_name": receipt.customer_name,
            "order_id": receipt.order_id,
        },
    )
    return email_job(tenant, now_ms, email)


async def enqueue_withdrawal_reference(
    tx: UnitOfWork, tenant: Tenant, now_ms: int, notice: WithdrawalNotice
) -> str:
    email = templated(
        WITHDRAWAL_REFERENCE,
        [notice.to],
        {
            "merchant_name": notice.merchant_name,
            "amount": notice.amount,
            "reference": notice.reference,
            "expires_at": notice.expires_at,
            "store_names": list(notice.store_names),
            "beneficiary_name": notice.beneficiary_name,
            "payout_order_id": notice.payout_order_id,
            "barcode_url": notice.barcode_url,
        },
    )
    return await enqueue(tx, tenant, now_ms, email)


async def send_test(uow: UnitOfWorkFactory, clock: Clock, tenant: Tenant, to: str) -> EmailJob:
    """Enqueue the generic test message to ``to`` from the tenant's account; the job, as enqueued."""
    async with uow(write=True) as tx:
        account = await tx.accounts.get(tenant.account_id)
        name = account.name if account is not None else "Caja"
        try:
            email = templated(TEST_MESSAGE, [to], {"merchant_name": name, "sent_at": clock.now()})
        except ValueError as exc:
            raise ParameterValidationError.invalid("to", str(exc)) from None
        job = email_job(tenant, clock.now_ms(), email)
        await tx.jobs.enqueue(job)
    # Answered as enqueued: the dispatcher may already be sending it, which a read would show.
    return EmailJob(
        id=job.id,
        livemode=tenant.livemode,
        to=email.to,
        template=email.template,
        status=JobStatus.PENDING,
        attempts=0,
        run_at=job.run_at,
        created_at=job.created_at,
    )


async def get_email_job(uow: UnitOfWorkFactory, tenant: Tenant, job_id: str) -> EmailJob:
    """One of the tenant's e-mail jobs (any message Caja sends: test messages, receipts, notices)."""
    async with uow() as tx:
        job = await tx.caught_emails.email_job(tenant, job_id)
    if job is None:
        raise ResourceNotFoundError.entity("EmailJob", job_id)
    return job


# -- the catcher's side ------------------------------------------------------------------------


async def catch(
    uow: UnitOfWorkFactory, clock: Clock, mail_from: str, recipients: list[str], raw: bytes
) -> CaughtEmail:
    """Keep one message the built-in catcher received, tied to the account of the job that sent it."""
    parsed = parse_message(raw)
    async with uow(write=True, notify=False) as tx:
        owner = await tx.caught_emails.owner_of_job(parsed.job_id) if parsed.job_id else None
        email = CaughtEmail(
            id=ids.new_ordered_id(CAUGHT_EMAIL_PREFIX),
            received_at=clock.now(),
            mail_from=mail_from,
            recipients=tuple(recipients),
            subject=parsed.subject,
            message=raw.decode("utf-8", "replace").replace("\x00", ""),
            account_id=owner.account_id if owner else None,
            livemode=owner.livemode if owner else None,
            job_id=parsed.job_id if owner else None,
        )
        await tx.caught_emails.insert(email)
    return email


async def _is_sandbox(tx: UnitOfWork, tenant: Tenant) -> bool:
    account = await tx.accounts.get(tenant.account_id)
    return account is not None and account.is_sandbox


async def list_caught(uow: UnitOfWorkFactory, tenant: Tenant, request: PageRequest) -> Page[CaughtEmail]:
    """The tenant's caught messages, newest first (the sandbox account also sees unattributed ones)."""
    async with uow() as tx:
        rows = await tx.caught_emails.page(tenant, request, sandbox=await _is_sandbox(tx, tenant))
    return Page([to_caught_email(r) for r in rows.rows], rows.has_more, request)


async def get_caught(uow: UnitOfWorkFactory, tenant: Tenant, email_id: str) -> CaughtEmail:
    async with uow() as tx:
        email = await tx.caught_emails.get(tenant, email_id, sandbox=await _is_sandbox(tx, tenant))
    if email is None:
        raise ResourceNotFoundError.entity("Email", email_id)
    return email
