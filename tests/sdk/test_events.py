"""Events end to end through the official SDK (conekta==9.0.0), on a fresh account per test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import conekta
import pytest
from conekta.exceptions import NotFoundException, UnprocessableEntityException

from tests.checks import codes_of, error_of, params_of
from tests.conftest import AccountKeys

UNREACHABLE = "http://127.0.0.2:9/events"


@pytest.fixture
def account(new_account: Callable[[str], AccountKeys]) -> AccountKeys:
    return new_account("Events SDK")


@pytest.fixture
def client(account: AccountKeys, sdk_for: Callable[[str], conekta.ApiClient]) -> Iterator[conekta.ApiClient]:
    with sdk_for(account.test_key) as api_client:
        yield api_client


@pytest.fixture
def events(client: conekta.ApiClient) -> conekta.EventsApi:
    return conekta.EventsApi(client)


def customer(client: conekta.ApiClient, name: str = "Ana") -> conekta.CustomerResponse:
    return conekta.CustomersApi(client).create_customer(
        conekta.Customer(name=name, email="ana@example.com", phone="+5215555555555")
    )


def test_a_change_is_an_event_with_conektas_envelope(
    events: conekta.EventsApi, client: conekta.ApiClient
) -> None:
    created = customer(client)
    [event] = events.get_events().data or []
    assert event.type == "customer.created"
    assert event.object == "event"
    assert event.livemode is False
    assert event.id is not None and len(event.id) == 24
    assert event.created_at == created.created_at
    data = event.data or {}
    assert data["object"]["id"] == created.id and data["object"]["object"] == "customer"
    assert data["previous_attributes"] == {}
    # No webhooks: nothing to deliver.
    assert event.webhook_status == "not_applicable"
    assert event.webhook_logs == []
    assert events.get_event(event.id).model_dump() == event.model_dump()


def test_updates_carry_previous_attributes(events: conekta.EventsApi, client: conekta.ApiClient) -> None:
    created = customer(client)
    conekta.CustomersApi(client).update_customer(created.id, conekta.UpdateCustomer(name="Ana María"))
    latest = (events.get_events(limit=1).data or [])[0]
    assert latest.type == "customer.updated"
    assert (latest.data or {})["object"]["name"] == "Ana María"
    assert (latest.data or {})["previous_attributes"] == {"name": "Ana"}


def test_events_list_newest_first_with_paging_and_search(
    events: conekta.EventsApi, client: conekta.ApiClient
) -> None:
    for name in ("A", "B", "C"):
        customer(client, name)
    page = events.get_events(limit=2)
    assert page.has_more is True
    names = [(e.data or {})["object"]["name"] for e in page.data or []]
    assert names == ["C", "B"]
    last = (page.data or [])[-1].id
    rest = events.get_events(limit=2, next=last)
    assert [(e.data or {})["object"]["name"] for e in rest.data or []] == ["A"]
    assert rest.has_more is False
    # search matches a type (or an id) exactly.
    assert len(events.get_events(search="customer.created").data or []) == 3
    assert events.get_events(search="customer.deleted").data == []
    one = (page.data or [])[0].id
    assert [e.id for e in events.get_events(search=one).data or []] == [one]


def test_webhook_changes_are_events_without_the_signing_secret(
    events: conekta.EventsApi, client: conekta.ApiClient
) -> None:
    hooks = conekta.WebhooksApi(client)
    created = hooks.create_webhook(conekta.WebhookRequest(url=UNREACHABLE, subscribed_events=["order.paid"]))
    hooks.update_webhook(created.id, conekta.UpdateWebhook(subscribed_events=["order.paid", "charge.paid"]))
    hooks.delete_webhook(created.id)
    types = [e.type for e in events.get_events().data or []]
    # The first webhook key is created with the first webhook.
    assert types == [
        "webhook.deleted",
        "webhook.updated",
        "webhook_ping",
        "webhook.created",
        "webhook_key.created",
    ]
    raw = events.get_events_with_http_info().raw_data.decode()
    assert "whsec_" not in raw and "signing_secret" not in raw
    updated = (events.get_events(search="webhook.updated").data or [])[0]
    assert (updated.data or {})["previous_attributes"] == {"subscribed_events": ["order.paid"]}


def test_resend_enqueues_a_new_delivery(events: conekta.EventsApi, client: conekta.ApiClient) -> None:
    hooks = conekta.WebhooksApi(client)
    target = hooks.create_webhook(conekta.WebhookRequest(url=UNREACHABLE, subscribed_events=["order.paid"]))
    created = customer(client)
    event = (events.get_events(search="customer.created").data or [])[0]
    assert (event.data or {})["object"]["id"] == created.id
    assert event.webhook_logs == []  # the webhook does not subscribe to customers

    resent = events.resend_event(event.id, conekta.ResendEventRequest(webhooks_ids=[target.id]))
    assert resent.id is not None and resent.id.startswith("webhl_")
    assert resent.url == UNREACHABLE
    assert resent.failed_attempts == 0

    again = events.get_event(event.id)
    [log] = again.webhook_logs or []
    assert log.id == resent.id
    assert log.url == UNREACHABLE
    assert again.webhook_status in {"pending", "failed"}  # nothing listens there


def test_resend_to_unknown_webhooks_or_events_fails(
    events: conekta.EventsApi,
    client: conekta.ApiClient,
    new_account: Callable[[str], AccountKeys],
    sdk_for: Callable[[str], conekta.ApiClient],
) -> None:
    hooks = conekta.WebhooksApi(client)
    mine = hooks.create_webhook(conekta.WebhookRequest(url=UNREACHABLE))
    customer(client)
    event_id = (events.get_events(search="customer.created").data or [])[0].id
    with sdk_for(new_account("Otro").test_key) as other_client:
        theirs = conekta.WebhooksApi(other_client).create_webhook(conekta.WebhookRequest(url=UNREACHABLE))
        # Another account cannot see, nor resend, this account's event.
        with pytest.raises(NotFoundException):
            conekta.EventsApi(other_client).get_event(event_id)
        with pytest.raises(NotFoundException):
            conekta.EventsApi(other_client).resend_event(
                event_id, conekta.ResendEventRequest(webhooks_ids=[theirs.id])
            )
    with pytest.raises(UnprocessableEntityException) as caught:
        events.resend_event(event_id, conekta.ResendEventRequest(webhooks_ids=[mine.id, theirs.id]))
    body = error_of(caught.value)
    assert params_of(body) == ["webhooks_ids[1]"]
    assert codes_of(body) == ["conekta.errors.parameter_validation.webhooks_ids.invalid"]
    with pytest.raises(NotFoundException) as missing:
        events.resend_event("0123456789abcdef01234567", conekta.ResendEventRequest(webhooks_ids=[mine.id]))
    assert codes_of(error_of(missing.value)) == ["conekta.errors.resource_not_found.entity"]
    # Only the original delivery to this account's webhook: the refused resends enqueued nothing.
    assert len(events.get_event(event_id).webhook_logs or []) == 1


def test_unknown_event_is_404(events: conekta.EventsApi) -> None:
    with pytest.raises(NotFoundException) as caught:
        events.get_event("0123456789abcdef01234567")
    body = error_of(caught.value)
    assert body["type"] == "resource_not_found_error"


def test_live_and_test_events_are_apart(
    account: AccountKeys, client: conekta.ApiClient, sdk_for: Callable[[str], conekta.ApiClient]
) -> None:
    customer(client)
    with sdk_for(account.live_key) as live_client:
        live = conekta.EventsApi(live_client)
        assert live.get_events().data == []
        created = customer(live_client)
        [event] = live.get_events().data or []
        assert event.livemode is True
        assert (event.data or {})["object"]["id"] == created.id
    assert len(conekta.EventsApi(client).get_events().data or []) == 1
    assert (
        json.loads(conekta.EventsApi(client).get_events_with_http_info().raw_data)["data"][0]["livemode"]
        is False
    )
