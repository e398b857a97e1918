"""A store paying a recurrent cash reference: look it up, pay it, reverse it (seed page 000).

The merchant decides through its synchronous webhook (``inbound_payment.lookup`` and
``inbound_payment.payment_attempt``, two seconds each) and Caja records the outcome. No
transaction stays open while the merchant is asked: the facts are read, the merchant answers,
and one write transaction then re-checks what may have changed and records everything at once
(order, charge, events, the payer's e-mail and the store's answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from caja.domain import ids
from caja.domain.approvals import LOOKUP, PAYMENT_ATTEMPT, ApprovalFailure, ApprovalResult
from caja.domain.cash_payments import (
    AmountRange,
    CashLookup,
    CashSettings,
    StoreTransaction,
    check_amount,
    check_reference,
    new_auth_code,
    payable_range,
)
from caja.domain.clock import Clock
from caja.domain.customers import Customer
from caja.domain.errors import (
    ConflictError,
    InternalError,
    ProcessingError,
    ResourceNotFoundError,
)
from caja.domain.events import new_event
from caja.domain.failure_codes import FAILURE_DESCRIPTIONS, FailureCode, from_merchant
from caja.domain.networks import Network
from caja.domain.orders import (
    CURRENCY,
    CashPaymentMethod,
    Charge,
    ChargeStatus,
    Order,
    OrderPaymentStatus,
    PayerDetails,
)
from caja.domain.payment_sources import PaymentSource
from caja.domain.representations import charge_json, inbound_payment_json, order_json
from caja.domain.tenancy import Tenant
from caja.services import emails
from caja.store.cash_payments import PaymentFacts, SeenParties
from caja.store.jobs import NewJob
from caja.store.payment_writes import PaidPayment, PaymentWrite
from caja.store.uow import UnitOfWork, UnitOfWorkFactory

ORDER_ID_PREFIX = "ord_"
LOOKUP_ID_PREFIX = "lkp_"
MAX_AUTH_CODE_DRAWS = 8


class Approver(Protocol):
    """The synchronous approval client (``caja.delivery.approvals.ApprovalClient``)."""

    async def request(
        self, tenant: Tenant, event_type: str, obj: dict[str, Any], *, budget: float | None = None
    ) -> ApprovalResult: ...


@dataclass(frozen=True, slots=True)
class CashDesk:
    """What the cash flow needs, built once by the composition root."""

    uow: UnitOfWorkFactory
    clock: Clock
    approvals: Approver
    settings: CashSettings
    base_url: str


@dataclass(frozen=True, slots=True)
class LookupRequest:
    reference: str
    store: str
    cashier: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    reference: str
    amount: int
    store: str
    transaction_id: str
    cashier: str | None = None
    lookup_id: str | None = None


def declined_json(code: FailureCode) -> dict[str, Any]:
    description = FAILURE_DESCRIPTIONS[code]
    return {
        "payable": False,
        "failure_code": code.value,
        "failure_message": description.message_es,
        "failure_message_en": description.message_en,
    }


@dataclass(frozen=True, slots=True)
class LookupOutcome:
    reference: str
    failure: FailureCode | None = None
    lookup: CashLookup | None = None
    customer_name: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"object": "cash_lookup", "reference": self.reference}
        if self.lookup is None:
            body.update(declined_json(self.failure or FailureCode.NOT_AUTHORIZED))
            return body
        body.update(
            {
                "id": self.lookup.id,
                "payable": True,
                "min_amount": self.lookup.min_amount,
                "max_amount": self.lookup.max_amount,
                "currency": CURRENCY,
                "customer_name": self.customer_name,
                "expires_at": self.lookup.expires_at,
            }
        )
        return body


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What the store is told about its transaction; ``replayed`` when a retry got the stored answer."""

    body: dict[str, Any]
    charge_id: str | None = None
    replayed: bool = False

    @property
    def paid(self) -> bool:
        return self.body.get("status") == "paid"


@dataclass(frozen=True, slots=True)
class _Facts:
    source: PaymentSource
    customer: Customer

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.source.account_id, self.source.livemode)


class _AnswerExists(Exception):
    """A concurrent request for the same store transaction recorded its answer first."""


class TransactionReusedError(ConflictError):
    @classmethod
    def of(cls, transaction_id: str) -> TransactionReusedError:
        return cls.with_detail(
            code="caja.errors.network.transaction_id_reused",
            message_es="El identificador de transacción ya se usó con otra referencia o monto.",
            message_en="The transaction id was already used with another reference or amount.",
            debug_message=(
                f"Store transaction {transaction_id[:64]!r} was already answered for a different "
                "reference or amount; a retry must repeat the original request."
            ),
            param="transaction_id",
        )


class ReversalRefusedError(ProcessingError):
    @classmethod
    def window_closed(cls, auth_code: int, window: int) -> ReversalRefusedError:
        return cls.with_detail(
            code="caja.errors.network.reversal_window_closed",
            message_es="El plazo para reversar este pago terminó.",
            message_en="The time to reverse this payment is over.",
            debug_message=f"Payment {auth_code} was made more than {window} s ago.",
            param="authorization_code",
        )


async def _facts(desk: CashDesk, reference: str, network: Network) -> _Facts | FailureCode:
    async with desk.uow(single_statement=True) as tx:
        return await _read_facts(tx, reference, network, desk.clock.now())


async def _read_facts(tx: UnitOfWork, reference: str, network: Network, now: int) -> _Facts | FailureCode:
    source, customer = await tx.cash_payments.reference_owner(reference)
    return _checked_facts(source, customer, network, now)


def _checked_facts(
    source: PaymentSource | None, customer: Customer | None, network: Network, now: int
) -> _Facts | FailureCode:
    # A network only ever sees references of its own mode, and an account's sandbox network only
    # that account's: anything else does not exist for them.
    if source is not None and (
        source.livemode != network.livemode
        or (network.account_id is not None and source.account_id != network.account_id)
    ):
        source = None
    failure = check_reference(source, customer, now)
    if failure is not None:
        return failure
    assert source is not None and customer is not None
    return _Facts(source, customer)


def _approval_object(
    desk: CashDesk,
    facts: _Facts,
    *,
    charge_id: str,
    amount: int,
    created_at: int,
    store: str,
    fee: int | None,
) -> dict[str, Any]:
    return inbound_payment_json(
        reference=facts.source.reference,
        expires_at=facts.source.expires_at,
        charge_id=charge_id,
        livemode=facts.source.livemode,
        customer_id=facts.customer.id,
        amount=amount,
        created_at=created_at,
        base_url=desk.base_url,
        fee=fee,
        store_name=store,
    )


async def _ask_lookup(
    desk: CashDesk, network: Network, facts: _Facts, store: str
) -> CashLookup | FailureCode:
    obj = _approval_object(
        desk, facts, charge_id=ids.new_hex_id(), amount=0, created_at=0, store=store, fee=None
    )
    reply = await desk.approvals.request(facts.tenant, LOOKUP, obj)
    if isinstance(reply, ApprovalFailure):
        return FailureCode.NOT_AUTHORIZED
    if not reply.payable:
        return from_merchant(reply.failure_code)
    allowed = payable_range(reply, desk.settings.limits)
    if isinstance(allowed, FailureCode):
        return allowed
    now = desk.clock.now()
    lookup = CashLookup(
        id=ids.new_ordered_id(LOOKUP_ID_PREFIX),
        network_id=network.id,
        store=store,
        reference=facts.source.reference,
        account_id=facts.source.account_id,
        livemode=facts.source.livemode,
        payment_source_id=facts.source.id,
        min_amount=allowed.min_amount,
        max_amount=allowed.max_amount,
        created_at=now,
        expires_at=now + desk.settings.lookup_ttl,
    )
    # Committed, but the store's answer does not wait for the disk: a lookup lost with the
    # machine's power is only a question to ask the merchant again, which a payment does when it
    # finds no lookup of its store's (docs/network-api.md). One statement: on PostgreSQL no
    # BEGIN or COMMIT around it.
    async with desk.uow(write=True, durable=False, prompt=True, single_statement=True) as tx:
        await tx.cash_payments.add_lookup(lookup)
    return lookup


async def lookup(desk: CashDesk, network: Network, request: LookupRequest) -> LookupOutcome:
    """Is the reference payable, and for which amounts? Asks the merchant (``inbound_payment.lookup``)."""
    facts = await _facts(desk, request.reference, network)
    if isinstance(facts, FailureCode):
        return LookupOutcome(request.reference, failure=facts)
    found = await _ask_lookup(desk, network, facts, request.store)
    if isinstance(found, FailureCode):
        return LookupOutcome(request.reference, failure=found)
    return LookupOutcome(request.reference, lookup=found, customer_name=facts.customer.name)


def _replay(previous: StoreTransaction, request: PaymentRequest) -> PaymentOutcome:
    if previous.reference != request.reference or previous.amount != request.amount:
        raise TransactionReusedError.of(request.transaction_id)
    return PaymentOutcome(previous.result, previous.charge_id, replayed=True)


def _payment_json(request: PaymentRequest, **fields: Any) -> dict[str, Any]:
    return {
        "object": "store_payment",
        "transaction_id": request.transaction_id,
        "reference": request.reference,
        "amount": request.amount,
        "currency": CURRENCY,
        "store": request.store,
        **fields,
    }


def _declined_payment_json(request: PaymentRequest, code: FailureCode) -> dict[str, Any]:
    description = FAILURE_DESCRIPTIONS[code]
    return _payment_json(
        request,
        status="declined",
        failure_code=code.value,
        failure_message=description.message_es,
        failure_message_en=description.message_en,
    )


async def _stored_answer(desk: CashDesk, network: Network, request: PaymentRequest) -> PaymentOutcome:
    # A write unit, though it only reads: on SQLite the winner's answer may sit in a group commit
    # that has not committed yet, and a write unit both sees it and returns once it is durable.
    async with desk.uow(write=True) as tx:
        previous = await tx.cash_payments.transaction(network.id, request.transaction_id)
    if previous is None:  # the winner rolled back after all: the caller may simply retry
        raise InternalError.general()
    return _replay(previous, request)


async def _record_decline(
    desk: CashDesk, network: Network, request: PaymentRequest, code: FailureCode
) -> PaymentOutcome:
    body = _declined_payment_json(request, code)
    try:
        async with desk.uow(write=True, single_statement=True) as tx:
            await _record(tx, _answer(network, request, "declined", body, None, desk.clock.now()))
    except _AnswerExists:
        return await _stored_answer(desk, network, request)
    return PaymentOutcome(body)


async def _record(tx: UnitOfWork, answer: StoreTransaction) -> None:
    if not await tx.cash_payments.record_transaction(answer):
        raise _AnswerExists


def _answer(
    network: Network,
    request: PaymentRequest,
    status: str,
    body: dict[str, Any],
    charge_id: str | None,
    now: int,
) -> StoreTransaction:
    """The store's answer to its transaction, as recorded (and replayed to its retries)."""
    return StoreTransaction(
        network_id=network.id,
        transaction_id=request.transaction_id,
        reference=request.reference,
        amount=request.amount,
        status=status,
        result=body,
        charge_id=charge_id,
        created_at=now,
    )


def _stored_lookup(
    found: CashLookup | None, network: Network, request: PaymentRequest, now: int
) -> CashLookup | FailureCode | None:
    """The lookup this payment follows (``found``: the one named, or the store's latest open one,
    as read); None: none valid."""
    if request.lookup_id is None:
        return found
    # A lookup answers one store's question about one reference; it pays only that.
    if found is None or (found.network_id, found.store, found.reference) != (
        network.id,
        request.store,
        request.reference,
    ):
        raise ResourceNotFoundError.entity("CashLookup", request.lookup_id)
    if found.charge_id is not None:
        return FailureCode.ALREADY_PAID
    return found if found.expires_at > now else None


async def pay(desk: CashDesk, network: Network, request: PaymentRequest) -> PaymentOutcome:
    """Take the payer's cash for a reference: idempotent on the store's transaction id."""
    now = desk.clock.now()
    # One read for everything known before the merchant is asked. No common snapshot needed (and
    # on PostgreSQL no transaction, and one statement): the write below checks again whatever
    # could have changed, under the locks that matter.
    async with desk.uow(snapshot=False) as tx:
        read = await tx.cash_payments.payment_facts(
            network.id, request.transaction_id, request.reference, request.store, request.lookup_id, now
        )
    previous = read.previous
    facts = _checked_facts(read.source, read.customer, network, now)
    payable = previous is None and request.amount > 0 and not isinstance(facts, FailureCode)
    stored = _stored_lookup(read.lookup, network, request, now) if payable else None
    if previous is not None:
        return _replay(previous, request)
    limits = desk.settings.limits
    if request.amount <= 0:
        return await _record_decline(desk, network, request, FailureCode.INVALID_AMOUNT)
    if isinstance(facts, FailureCode):
        return await _record_decline(desk, network, request, facts)
    # No valid lookup (the store skipped it, or it expired): ask the merchant now.
    found = stored if stored is not None else await _ask_lookup(desk, network, facts, request.store)
    if isinstance(found, FailureCode):
        return await _record_decline(desk, network, request, found)
    refused = check_amount(request.amount, found.range, limits)
    if refused is not None:
        return await _record_decline(desk, network, request, refused)
    fee = desk.settings.pricing.fee(request.amount)
    charge_id = ids.new_hex_id()
    obj = _approval_object(
        desk,
        facts,
        charge_id=charge_id,
        amount=request.amount,
        created_at=desk.clock.now(),
        store=request.store,
        fee=fee,
    )
    reply = await desk.approvals.request(facts.tenant, PAYMENT_ATTEMPT, obj)
    if isinstance(reply, ApprovalFailure):
        return await _record_decline(desk, network, request, FailureCode.NOT_AUTHORIZED)
    if not reply.payable:
        # Declining the amount without a reason means the amount is not allowed.
        code = from_merchant(reply.failure_code) if reply.failure_code else FailureCode.AMOUNT_NOT_ALLOWED
        return await _record_decline(desk, network, request, code)
    if reply.max_amount == 0:
        # Approving nothing at all: no debt, as at the lookup (not an amount out of range).
        return await _record_decline(desk, network, request, FailureCode.NO_DEBT)
    if reply.min_amount is not None or reply.max_amount is not None:
        high = reply.max_amount if reply.max_amount is not None else limits.max_amount
        narrowed = AmountRange(reply.min_amount or 0, high)
        if request.amount not in narrowed:
            return await _record_decline(desk, network, request, FailureCode.AMOUNT_OUT_OF_RANGE)
    try:
        return await _commit_payment(desk, network, request, found, charge_id, fee, read)
    except _AnswerExists:
        return await _stored_answer(desk, network, request)


async def _commit_payment(
    desk: CashDesk,
    network: Network,
    request: PaymentRequest,
    found: CashLookup,
    charge_id: str,
    fee: int,
    read: PaymentFacts,
) -> PaymentOutcome:
    now = desk.clock.now()
    tenant = Tenant(found.account_id, found.livemode)
    # PostgreSQL: one statement, if the reference, its customer and the webhooks are as the payment
    # read them and nothing clashes; otherwise the transaction below, which re-reads them.
    seen, source, customer = read.seen, read.source, read.customer
    if seen is not None and source is not None and customer is not None:
        paid = _paid_payment(
            desk, tenant, network, request, found, (source, customer, seen.merchant_name), charge_id, fee, now
        )
        if check_reference(source, customer, now) is None and await _write_if_unchanged(desk, paid, seen):
            return PaymentOutcome(paid.answer.result, paid.charge.id)
    async with desk.uow(write=True) as tx:
        # What may have changed while the merchant was asked: the reference, its customer, the lookup.
        source, customer, merchant_name = await tx.cash_payments.reference_parties(request.reference)
        failure = check_reference(source, customer, now)
        if failure is None:
            assert source is not None and customer is not None
            for _ in range(MAX_AUTH_CODE_DRAWS):
                parties = (source, customer, merchant_name)
                paid = _paid_payment(desk, tenant, network, request, found, parties, charge_id, fee, now)
                written = await tx.payment_writes.write(paid)
                if written is not PaymentWrite.AUTH_CODE_TAKEN:
                    break
            else:
                raise InternalError.general()
            if written is PaymentWrite.ANSWER_EXISTS:
                raise _AnswerExists
            if written is PaymentWrite.WRITTEN:
                return PaymentOutcome(paid.answer.result, paid.charge.id)
            failure = FailureCode.ALREADY_PAID
        body = _declined_payment_json(request, failure)
        await _record(tx, _answer(network, request, "declined", body, None, now))
        return PaymentOutcome(body)


async def _write_if_unchanged(desk: CashDesk, paid: PaidPayment, seen: SeenParties) -> bool:
    async with desk.uow(write=True, single_statement=True) as tx:
        return await tx.payment_writes.write_if_unchanged(paid, seen)


def _paid_payment(
    desk: CashDesk,
    tenant: Tenant,
    network: Network,
    request: PaymentRequest,
    found: CashLookup,
    parties: tuple[PaymentSource, Customer, str | None],
    charge_id: str,
    fee: int,
    now: int,
) -> PaidPayment:
    """What a paid payment writes, with a newly drawn auth code: the order and its charge, born
    pending and paid at once, their four events, the store's answer and the payer's receipt."""
    source, customer, merchant_name = parties
    payer = PayerDetails(
        name=customer.name,
        email=customer.email,
        phone=customer.phone,
        corporate=customer.corporate,
        custom_reference=customer.custom_reference,
    )
    order = Order(
        id=ids.new_ordered_id(ORDER_ID_PREFIX),
        account_id=tenant.account_id,
        livemode=tenant.livemode,
        customer_id=customer.id,
        amount=request.amount,
        currency=CURRENCY,
        payment_status=OrderPaymentStatus.PENDING_PAYMENT,
        payer=payer,
        metadata={},
        created_at=now,
        updated_at=now,
    )
    pending = Charge(
        id=charge_id,
        account_id=tenant.account_id,
        livemode=tenant.livemode,
        order_id=order.id,
        customer_id=customer.id,
        payment_source_id=source.id,
        network_id=network.id,
        amount=request.amount,
        fee=fee,
        currency=CURRENCY,
        status=ChargeStatus.PENDING_PAYMENT,
        payment_method=CashPaymentMethod(
            reference=source.reference,
            expires_at=source.expires_at,
            store_name=request.store,
            store=None,
            cashier_id=request.cashier,
            auth_code=new_auth_code(),
        ),
        payer=payer,
        created_at=now,
        updated_at=now,
    )
    paid_charge = pending.moved_to(ChargeStatus.PAID, now)
    pending_order = order.with_charges((pending,))
    paid_order = order.moved_to(OrderPaymentStatus.PAID, now).with_charges((paid_charge,))
    base_url = desk.base_url
    events = (
        new_event(tenant, "order.created", order_json(pending_order, base_url), now),
        new_event(tenant, "charge.created", charge_json(pending, base_url), now),
        new_event(
            tenant, "charge.paid", charge_json(paid_charge, base_url), now, {"status": pending.status.value}
        ),
        new_event(
            tenant,
            "order.paid",
            order_json(paid_order, base_url),
            now,
            {"payment_status": OrderPaymentStatus.PENDING_PAYMENT.value},
        ),
    )
    auth_code = str(paid_charge.payment_method.auth_code)
    body = _payment_json(request, status="paid", authorization_code=auth_code, paid_at=now, fee=fee)
    receipts: tuple[NewJob, ...] = ()
    if customer.email:
        receipt = emails.PaymentReceipt(
            to=customer.email,
            merchant_name=merchant_name or "",
            amount=request.amount,
            reference=request.reference,
            store=request.store,
            paid_at=now,
            authorization_code=auth_code,
            customer_name=customer.name,
            order_id=order.id,
        )
        receipts = (emails.payment_receipt_job(tenant, desk.clock.now_ms(), receipt),)
    answer = _answer(network, request, "paid", body, paid_charge.id, now)
    return PaidPayment(found.id, paid_charge, paid_order, answer, events, receipts)


async def _reverse_charge(tx: UnitOfWork, charge: Charge, now: int, base_url: str) -> Charge:
    tenant = Tenant(charge.account_id, charge.livemode)
    order = await tx.orders.get(tenant, charge.order_id, for_update=True)
    if order is None:
        raise InternalError.general()
    reversed_charge = charge.moved_to(ChargeStatus.REVERSED, now)
    reversed_order = order.moved_to(OrderPaymentStatus.REVERSED, now).with_charges(
        tuple(reversed_charge if c.id == charge.id else c for c in order.charges)
    )
    await tx.orders.set_charge_status(reversed_charge)
    await tx.orders.set_order_status(order.id, OrderPaymentStatus.REVERSED, now)
    tx.events.add(
        new_event(
            tenant,
            "charge.reversed",
            charge_json(reversed_charge, base_url),
            now,
            {"status": ChargeStatus.PAID.value},
        )
    )
    tx.events.add(
        new_event(
            tenant,
            "order.reversed",
            order_json(reversed_order, base_url),
            now,
            {"payment_status": OrderPaymentStatus.PAID.value},
        )
    )
    return reversed_charge


def reversal_json(charge: Charge) -> dict[str, Any]:
    return {
        "object": "store_reversal",
        "authorization_code": str(charge.payment_method.auth_code),
        "reference": charge.payment_method.reference,
        "amount": charge.amount,
        "currency": charge.currency,
        "status": charge.status.value,
        "reversed_at": charge.reversed_at,
    }


async def reverse(desk: CashDesk, network: Network, auth_code: int) -> Charge:
    """Undo a payment by its authorization code, inside the window; repeating it changes nothing."""
    now = desk.clock.now()
    async with desk.uow(write=True) as tx:
        charge = await tx.orders.charge_by_auth_code(auth_code)
        # Only the network that took the money may give it back.
        if charge is None or charge.network_id != network.id:
            raise ResourceNotFoundError.entity("Payment", str(auth_code))
        if charge.status is ChargeStatus.REVERSED:
            return charge
        if charge.paid_at is None or now - charge.paid_at > desk.settings.reversal_window:
            raise ReversalRefusedError.window_closed(auth_code, desk.settings.reversal_window)
        return await _reverse_charge(tx, charge, now, desk.base_url)


async def reverse_latest(desk: CashDesk, tenant: Tenant, network: Network, reference: str) -> Charge | None:
    """``POST /payment_test`` reverse: the latest payment ``network`` took on the reference that is
    still inside the window. Only the network that took a payment may reverse it, as on the
    network API: the sandbox's store never undoes what a real store network took."""
    now = desk.clock.now()
    async with desk.uow(write=True) as tx:
        charge = await tx.orders.latest_paid_on_reference(
            tenant, network.id, reference, now - desk.settings.reversal_window
        )
        if charge is None:
            return None
        return await _reverse_charge(tx, charge, now, desk.base_url)
