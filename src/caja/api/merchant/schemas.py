"""Request bodies of the merchant API, validated strictly: no coercion, no unknown fields."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from caja.domain.customers import NewCustomer
from caja.domain.emails import ADDRESS_PATTERN, MAX_LENGTH, normalise_email
from caja.domain.payment_sources import NEVER_EXPIRES, NewPaymentSource, PaymentSourceType, parse_type
from caja.domain.webhooks import NewWebhook

_PHONE_SYNTAX = r"\+?[0-9][0-9 ()\-]{5,24}"
_PHONE = re.compile(_PHONE_SYNTAX)
# What the validators below accept, as JSON Schema keywords for the OpenAPI document (the
# validators, not these, decide; they word their own errors).
_PHONE_DOC = Field(json_schema_extra={"pattern": f"^{_PHONE_SYNTAX}$"})
EMAIL_DOC = Field(json_schema_extra={"pattern": ADDRESS_PATTERN, "maxLength": MAX_LENGTH})
_BIRTH_DATE_DOC = Field(
    json_schema_extra={"pattern": r"^([0-9]{2}/[0-9]{2}/[0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2})$"}
)
_SOURCE_TYPE_DOC = Field(
    json_schema_extra={
        "enum": [PaymentSourceType.CASH_RECURRENT.value, PaymentSourceType.SPEI_RECURRENT.value]
    }
)


def _phone(value: str) -> str:
    if not _PHONE.fullmatch(value):
        raise ValueError("a phone number has digits, optionally a leading +, spaces, dashes or parentheses")
    return value


def _birth_date(value: str) -> str:
    try:
        _dmy(value) if "/" in value else date.fromisoformat(value)
    except ValueError:
        raise ValueError("use DD/MM/YYYY (24/07/1992) or YYYY-MM-DD") from None
    return value


def _dmy(value: str) -> date:
    day, month, year = value.split("/")
    if len(year) != 4:
        raise ValueError(value)
    return date(int(year), int(month), int(day))


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it on every backend rather than fail on one.
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=250), AfterValidator(_no_nul)
]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=40), AfterValidator(_phone), _PHONE_DOC
]
Text250 = Annotated[str, StringConstraints(max_length=250), AfterValidator(_no_nul)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40), AfterValidator(_no_nul)]
BirthDate = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=10), AfterValidator(_birth_date), _BIRTH_DATE_DOC
]
Email = Annotated[str, AfterValidator(normalise_email), EMAIL_DOC]
Metadata = Annotated[dict[str, Any], Field(max_length=100)]
Epoch = Annotated[int, Field(ge=0, le=4_102_444_800)]  # up to 2100-01-01


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AntifraudInfoIn(StrictBody):
    account_created_at: Epoch | None = None
    first_paid_at: Epoch | None = None


class PaymentSourceIn(StrictBody):
    type: Annotated[str, StringConstraints(min_length=1, max_length=40), _SOURCE_TYPE_DOC]
    expires_at: Epoch | None = Field(
        default=None, description="0 or absent: never expires; otherwise an epoch 1 to 365 days ahead"
    )

    def to_domain(self, param: str = "type") -> NewPaymentSource:
        kind = parse_type(self.type, param)
        return NewPaymentSource(type=kind, expires_at=self.expires_at or NEVER_EXPIRES)


class PaymentSourceUpdateIn(StrictBody):
    expires_at: Epoch | None = None


class CustomerCreateIn(StrictBody):
    name: Name
    email: Email
    phone: Phone | None = None
    corporate: bool = False
    custom_reference: Text250 | None = None
    date_of_birth: BirthDate | None = None
    national_id: ShortText | None = None
    metadata: Metadata | None = None
    antifraud_info: AntifraudInfoIn | None = None
    default_payment_source_id: ShortText | None = None
    payment_sources: Annotated[list[PaymentSourceIn], Field(max_length=10)] | None = None

    def to_domain(self) -> NewCustomer:
        sources = tuple(
            s.to_domain(f"payment_sources[{i}].type") for i, s in enumerate(self.payment_sources or [])
        )
        return NewCustomer(
            name=self.name,
            email=str(self.email),
            phone=self.phone,
            corporate=self.corporate,
            custom_reference=self.custom_reference or "",
            date_of_birth=self.date_of_birth,
            national_id=self.national_id,
            metadata=self.metadata or {},
            antifraud_info=self.antifraud_info.model_dump(exclude_none=True) if self.antifraud_info else None,
            default_payment_source_id=self.default_payment_source_id,
            payment_sources=sources,
        )


class CustomerUpdateIn(StrictBody):
    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    corporate: bool | None = None
    custom_reference: Text250 | None = None
    date_of_birth: BirthDate | None = None
    national_id: ShortText | None = None
    metadata: Metadata | None = None
    antifraud_info: AntifraudInfoIn | None = None
    default_payment_source_id: ShortText | None = None

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent; an explicit null clears an optional field."""
        changes = self.model_dump(exclude_unset=True)
        if self.antifraud_info is not None:
            changes["antifraud_info"] = self.antifraud_info.model_dump(exclude_none=True)
        if self.email is not None:
            changes["email"] = str(self.email)
        return changes


_URL_DOC = Field(
    json_schema_extra={"pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#:@]+(:[1-9][0-9]{0,4})?([/?#]\S*)?$"}
)
WebhookUrl = Annotated[
    str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_no_nul), _URL_DOC
]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=80), AfterValidator(_no_nul)]
Description = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_nul)]
ObjectId = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_no_nul)]


class WebhookCreateIn(StrictBody):
    url: WebhookUrl = Field(description="http(s) endpoint; live mode refuses local and private addresses")
    description: Description | None = None
    subscribed_events: Annotated[list[EventType], Field(max_length=200)] | None = Field(
        default=None, description="Event types to receive; omitted or empty: all of them"
    )
    synchronous: bool = Field(
        default=False, description="Receives only the recurrent-cash approval calls, not ordinary events"
    )
    active: bool = True

    def to_domain(self) -> NewWebhook:
        return NewWebhook(
            url=self.url,
            description=self.description,
            subscribed_events=tuple(self.subscribed_events or ()),
            synchronous=self.synchronous,
            active=self.active,
        )


class WebhookUpdateIn(StrictBody):
    url: WebhookUrl | None = None
    description: Description | None = None
    subscribed_events: Annotated[list[EventType], Field(max_length=200)] | None = None
    synchronous: bool | None = None
    active: bool | None = None

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent; ``description: null`` clears it."""
        changes = self.model_dump(exclude_unset=True)
        if self.subscribed_events is not None:
            changes["subscribed_events"] = tuple(self.subscribed_events)
        return changes


class WebhookKeyCreateIn(StrictBody):
    active: bool = True


class WebhookKeyUpdateIn(StrictBody):
    active: bool | None = None


class EventResendIn(StrictBody):
    webhooks_ids: Annotated[list[ObjectId], Field(min_length=1, max_length=10)]
