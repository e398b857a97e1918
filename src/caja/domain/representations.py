"""The Conekta JSON shape of each object, shared by API responses and event payloads.

Pure functions from domain objects to plain dicts; ``base_url`` is where Caja serves its public
assets (barcode images, slips), since a payer's browser must reach them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from caja.domain.clabe import BANK_NAME
from caja.domain.customers import Customer
from caja.domain.payment_sources import NEVER_EXPIRES, PaymentSource, PaymentSourceType
from caja.domain.stores import AGREEMENTS, CASH_PROVIDER, STORE_NAMES

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
