"""Events: the record of each state change, delivered to merchants by webhooks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from caja.domain.ids import new_hex_id
from caja.domain.tenancy import Tenant

WEBHOOK_PING = "webhook_ping"

# Every event type Caja emits. Ordinary ones go to each webhook subscribed to them; a
# ``webhook_ping`` goes only to the webhook it tests. Add a type here when a service starts
# emitting it: webhook subscriptions are checked against this catalogue.
CAJA_EVENT_TYPES: tuple[str, ...] = (
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "payment_source.created",
    "payment_source.updated",
    "payment_source.deleted",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook.disabled",
    "webhook_key.created",
    "webhook_key.updated",
    "webhook_key.deleted",
    WEBHOOK_PING,
    # The recurrent cash and SPEI flows (orders, charges) emit these.
    "order.created",
    "order.paid",
    "order.expired",
    "order.canceled",
    "order.reversed",
    "charge.created",
    "charge.paid",
    "charge.expired",
    "charge.reversed",
)

# Sent only to synchronous webhooks, as approval calls that wait for an answer; never subscribable.
SYNCHRONOUS_EVENT_TYPES = frozenset({"inbound_payment.lookup", "inbound_payment.payment_attempt"})

# The types Conekta lists on its webhooks. A subscription may name them so a merchant's Conekta
# configuration works unchanged, even where Caja (offline rails only) never emits the type.
CONEKTA_EVENT_TYPES = frozenset(
    {
        "charge.created",
        "charge.paid",
        "charge.under_fraud_review",
        "charge.fraudulent",
        "charge.refunded",
        "charge.preauthorized",
        "charge.declined",
        "charge.canceled",
        "charge.reversed",
        "charge.pending_confirmation",
        "charge.expired",
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "webhook.created",
        "webhook.updated",
        "webhook.deleted",
        "charge.chargeback.created",
        "charge.chargeback.updated",
        "charge.chargeback.under_review",
        "charge.chargeback.lost",
        "charge.chargeback.won",
        "payout.created",
        "payout.retrying",
        "payout.paid_out",
        "payout.failed",
        "plan.created",
        "plan.updated",
        "plan.deleted",
        "subscription.created",
        "subscription.paused",
        "subscription.resumed",
        "subscription.canceled",
        "subscription.expired",
        "subscription.updated",
        "subscription.paid",
        "subscription.payment_failed",
        "payee.created",
        "payee.updated",
        "payee.deleted",
        "payee.payout_method.created",
        "payee.payout_method.updated",
        "payee.payout_method.deleted",
        "charge.score_updated",
        "receipt.created",
        "order.canceled",
        "order.charged_back",
        "order.created",
        "order.expired",
        "order.fraudulent",
        "order.under_fraud_review",
        "order.paid",
        "order.partially_refunded",
        "order.pending_payment",
        "order.pre_authorized",
        "order.refunded",
        "order.updated",
        "order.voided",
        "order.declined",
        "cashout.canceled",
        "cashout.confirmed",
        "webhook_ping",
        "customer.payment_source.card.blocked",
        "cash_refund.created",
        "cash_refund.canceled",
        "cash_refund.refunded",
        "cash_refund.expired",
    }
)

SUBSCRIBABLE_EVENT_TYPES = frozenset(CAJA_EVENT_TYPES) | CONEKTA_EVENT_TYPES


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    tenant: Tenant
    type: str
    object: dict[str, Any]
    created_at: int
    previous_attributes: dict[str, Any] = field(default_factory=dict)
    # None: delivered to every webhook of the tenant subscribed to ``type``. Otherwise exactly to
    # these webhooks, whatever their subscriptions (a ``webhook_ping`` tests one endpoint).
    webhook_ids: tuple[str, ...] | None = None
    # The whole ``data`` member when it is not ``{object, previous_attributes}`` (pings).
    data_override: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        if self.data_override is not None:
            return self.data_override
        return {"object": self.object, "previous_attributes": self.previous_attributes}


def new_event(
    tenant: Tenant,
    type: str,
    obj: dict[str, Any],
    now: int,
    previous_attributes: dict[str, Any] | None = None,
) -> Event:
    return Event(
        id=new_hex_id(),
        tenant=tenant,
        type=type,
        object=obj,
        created_at=now,
        previous_attributes=previous_attributes or {},
    )


def new_ping_event(tenant: Tenant, webhook_id: str, now: int) -> Event:
    """A ``webhook_ping`` for one webhook, with the data Conekta sends: ``{livemode, action}``."""
    return Event(
        id=new_hex_id(),
        tenant=tenant,
        type=WEBHOOK_PING,
        object={},
        created_at=now,
        webhook_ids=(webhook_id,),
        data_override={"livemode": tenant.livemode, "action": "ping"},
    )


@dataclass(frozen=True, slots=True)
class WebhookLog:
    """One delivery of an event to one webhook (a webhook job), as Conekta's ``webhook_logs`` show it."""

    id: str
    event_id: str
    webhook_id: str | None
    url: str
    status: str  # the job's status: pending, running, succeeded, failed, cancelled
    failed_attempts: int
    last_http_status: int | None
    last_attempted_at: int | None  # epoch seconds
    response_body: str | None


@dataclass(frozen=True, slots=True)
class EventDetail:
    """An event with its deliveries, as ``GET /events/{id}`` shows it."""

    event: Event
    logs: tuple[WebhookLog, ...] = ()

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def webhook_status(self) -> str:
        return webhook_status(log.status for log in self.logs)


def webhook_status(job_statuses: Iterable[str]) -> str:
    """The delivery state of an event, from the statuses of its delivery jobs.

    ``not_applicable`` when it had no deliveries (or all were cancelled), ``pending`` while any is
    pending or running, then ``failed`` when any gave up, else ``successful``.
    """
    statuses = set(job_statuses)
    if statuses & {"pending", "running"}:
        return "pending"
    if "failed" in statuses:
        return "failed"
    if "succeeded" in statuses:
        return "successful"
    return "not_applicable"
