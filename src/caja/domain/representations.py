"""The Conekta JSON shape of each object, shared by API responses and event payloads.

Pure functions from domain objects to plain dicts; ``base_url`` is where Caja serves its public
assets (barcode images, slips), since a payer's browser must reach them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from caja.domain.clabe import BANK_NAME
from caja.domain.customers import Customer
from caja.domain.events import CAJA_EVENT_TYPES, Event, EventDetail, WebhookLog
from caja.domain.orders import CURRENCY, Charge, Order, PayerDetails
from caja.domain.payment_sources import NEVER_EXPIRES, PaymentSource, PaymentSourceType
from caja.domain.stores import AGREEMENTS, CASH_PROVIDER, STORE_NAMES
from caja.domain.webhooks import Webhook, WebhookKey

JSON = dict[str, Any]


def iso8601(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def barcode_url(base_url: str, reference: str) -> str:
    return f"{base_url}/barcodes/{reference}.png"


def payment_source_json(source: PaymentSource, base_url: str) -> JSON:
    body: JSON = {
        "id": source.id,
        "object": "payment_source",
        "type": source.type.value,
        "reference": source.reference,
        "created_at": source.created_at,
        "parent_id": source.customer_id,
    }
    if source.type is PaymentSourceType.CASH_RECURRENT:
        body["provider"] = CASH_PROVIDER
        body["store_names"] = list(STORE_NAMES)
        body["barcode"] = source.reference
        body["barcode_url"] = barcode_url(base_url, source.reference)
        # The payer's printable slip (HTML; the same URL + ".pdf" is its PDF): see web/slips.py.
        body["voucher_url"] = f"{base_url}/slips/{source.id}"
        body["agreements"] = [{"agreement": number, "provider": name} for name, number in AGREEMENTS]
        body["expires_at"] = source.expires_at
    else:
        body["bank"] = BANK_NAME
        body["expires_at"] = "none" if source.expires_at == NEVER_EXPIRES else iso8601(source.expires_at)
    return body


def list_envelope(data: list[JSON], *, has_more: bool = False, total: int | None = None) -> JSON:
    body: JSON = {"object": "list", "has_more": has_more}
    if total is not None:
        body["total"] = total
    body["data"] = data
    return body


def customer_json(customer: Customer, base_url: str) -> JSON:
    body: JSON = {
        "livemode": customer.livemode,
        "name": customer.name,
        "email": customer.email,
        "id": customer.id,
        "object": "customer",
        "created_at": customer.created_at,
        "corporate": customer.corporate,
        "custom_reference": customer.custom_reference,
    }
    if customer.phone is not None:
        body["phone"] = customer.phone
    if customer.date_of_birth is not None:
        body["date_of_birth"] = customer.date_of_birth
    if customer.national_id is not None:
        body["national_id"] = customer.national_id
    if customer.antifraud_info is not None:
        body["antifraud_info"] = customer.antifraud_info
    body["metadata"] = customer.metadata
    body["default_payment_source_id"] = customer.default_payment_source_id
    if customer.payment_sources:
        sources = [payment_source_json(s, base_url) for s in customer.payment_sources]
        body["payment_sources"] = list_envelope(sources, total=len(sources))
    if customer.deleted_at is not None:
        body["deleted"] = True
    return body


def webhook_json(webhook: Webhook, *, with_secret: bool = False) -> JSON:
    """Conekta's ``webhook_response``. ``signing_secret`` (Caja's extension, for Standard Webhooks
    signatures) appears in API responses only, never in event payloads."""
    body: JSON = {
        "id": webhook.id,
        "object": "webhook",
        "url": webhook.url,
        "description": webhook.description,
        "status": webhook.status.value,
        # An empty subscription takes every type: shown as the full list, as Conekta shows it.
        "subscribed_events": list(webhook.subscribed_events or CAJA_EVENT_TYPES),
        "active": webhook.active,
        "livemode": webhook.livemode,
        "synchronous": webhook.synchronous,
        "production_enabled": webhook.livemode,
        "development_enabled": not webhook.livemode,
        "created_at": webhook.created_at,
    }
    if with_secret:
        body["signing_secret"] = webhook.signing_secret
    if webhook.deleted_at is not None:
        body["deleted"] = True
    return body


def webhook_key_json(key: WebhookKey) -> JSON:
    """Conekta's ``webhook_key_response``; a deleted key answers ``webhook_key_delete_response``."""
    body: JSON = {
        "id": key.id,
        "object": "webhook_key",
        "active": key.active,
        "livemode": key.livemode,
        "created_at": key.created_at,
        "deactivated_at": key.deactivated_at,
    }
    if key.deleted_at is not None:
        body["deleted"] = True
    else:
        body["public_key"] = key.public_key
    return body


def event_envelope(event: Event) -> JSON:
    """The event's envelope without the delivery bookkeeping (the dashboard shows it like this)."""
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "livemode": event.tenant.livemode,
        "created_at": event.created_at,
        "data": event.data,
    }


def delivered_event_json(event: Event) -> JSON:
    """The body POSTed to a webhook: the envelope as Conekta's notifications carry it (seed page
    000's ``charge.paid``), with the delivery fields as they stand when it is sent."""
    body = event_envelope(event)
    body["webhook_status"] = "pending"
    body["webhook_logs"] = []
    return body


def webhook_log_json(log: WebhookLog) -> JSON:
    return {
        "id": log.id,
        "object": "webhook_log",
        "url": log.url,
        "failed_attempts": log.failed_attempts,
        "last_http_response_status": log.last_http_status,
        "last_attempted_at": log.last_attempted_at,
        "response_data": response_data(log.response_body),
        "webhook_id": log.webhook_id,
    }


def response_data(body: str | None) -> JSON:
    """A receiver's answer as an object when it is a JSON object, else ``{}``."""
    if not body:
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def event_json(detail: EventDetail) -> JSON:
    """Conekta's ``event_response``: the envelope plus ``webhook_status`` and ``webhook_logs``."""
    body = event_envelope(detail.event)
    body["webhook_status"] = detail.webhook_status
    body["webhook_logs"] = [webhook_log_json(log) for log in detail.logs]
    return body


def cash_payment_json(charge: Charge, base_url: str) -> JSON:
    """Conekta's ``cash_payment`` object of a paid recurrent reference (seed page 000)."""
    method = charge.payment_method
    return {
        "service_name": CASH_PROVIDER,
        "barcode": method.reference,
        "reference": method.reference,
        "barcode_url": barcode_url(base_url, method.reference),
        "store": method.store,
        "store_name": method.store_name,
        "cashier_id": method.cashier_id,
        "auth_code": method.auth_code,
        "object": "cash_payment",
        "type": "cash",
        "expires_at": method.expires_at,
    }


def _details_json(payer: PayerDetails) -> JSON:
    return {
        "name": payer.name,
        "phone": payer.phone,
        "email": payer.email,
        "line_items": [],
        "coupons": [],
        "object": "details",
    }


def charge_json(charge: Charge, base_url: str) -> JSON:
    """Conekta's charge, as the seed's ``charge.paid`` / ``charge.reversed`` payloads show it."""
    return {
        "id": charge.id,
        "livemode": charge.livemode,
        "created_at": charge.created_at,
        "currency": charge.currency,
        "description": "Pago en efectivo recurrente",
        "reference_id": None,
        "failure_code": None,
        "failure_message": None,
        "monthly_installments": None,
        "device_fingerprint": None,
        "channel": None,
        "payment_method": cash_payment_json(charge, base_url),
        "details": _details_json(charge.payer),
        "object": "charge",
        "status": charge.status.value,
        "amount": charge.amount,
        "paid_at": charge.paid_at,
        "fee": charge.fee,
        "customer_id": charge.customer_id,
        "order_id": charge.order_id,
        "subscription_id": "",
        "amount_refunded": None,
        "customer_custom_reference": charge.payer.custom_reference or None,
    }


def order_json(order: Order, base_url: str) -> JSON:
    """Conekta's order (seed page 000's ``order.reversed`` payload), its charges embedded as a list."""
    payer = order.payer
    customer_info: JSON = {
        "email": payer.email,
        "phone": payer.phone,
        "name": payer.name,
        "corporate": payer.corporate,
        "customer_id": order.customer_id,
        "object": "customer_info",
    }
    if payer.custom_reference:
        customer_info["customer_custom_reference"] = payer.custom_reference
    return {
        "livemode": order.livemode,
        "amount": order.amount,
        "currency": order.currency,
        "payment_status": order.payment_status.value,
        "amount_refunded": 0,
        "customer_info": customer_info,
        "object": "order",
        "id": order.id,
        "metadata": order.metadata,
        "is_refundable": False,
        "processing_mode": "recurrent",
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "charges": list_envelope([charge_json(c, base_url) for c in order.charges], total=len(order.charges)),
    }


def inbound_payment_json(
    *,
    reference: str,
    expires_at: int,
    charge_id: str,
    livemode: bool,
    customer_id: str,
    amount: int,
    created_at: int,
    base_url: str,
    fee: int | None = None,
    store_name: str | None = None,
) -> JSON:
    """The object of a synchronous ``inbound_payment.*`` approval call (seed page 000, section 4)."""
    method: JSON = {
        "service_name": CASH_PROVIDER,
        "barcode_url": barcode_url(base_url, reference),
        "object": "cash_payment",
        "type": "cash",
        "expires_at": expires_at,
        "reference": reference,
    }
    if store_name is not None:
        method["store_name"] = store_name
    body: JSON = {
        "payment_method": method,
        "charge_id": charge_id,
        "livemode": livemode,
        "created_at": created_at,
        "object": "inbound_payment",
        "amount": amount,
        "currency": CURRENCY,
        "customer_id": customer_id,
    }
    if fee is not None:
        body["fee"] = fee
    return body
