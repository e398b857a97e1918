"""Webhooks end to end through the official SDK (conekta==9.0.0), on a fresh account per test.

The SDK refuses URLs containing ``localhost`` or ``127.0.0.1``, so local endpoints use 127.0.0.2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator

import conekta
import pytest
from conekta.exceptions import NotFoundException, UnprocessableEntityException
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.checks import codes_of, error_of, params_of
from tests.conftest import AccountKeys
from tests.hook_receiver import HookReceiver, wait_until

UNREACHABLE = "http://127.0.0.2:9/hooks"  # nothing listens on port 9: deliveries keep failing
HEX24 = re.compile(r"[0-9a-f]{24}")


@pytest.fixture
def client(
    new_account: Callable[[str], AccountKeys], sdk_for: Callable[[str], conekta.ApiClient]
) -> Iterator[conekta.ApiClient]:
    with sdk_for(new_account("Webhooks SDK").test_key) as api_client:
        yield api_client


@pytest.fixture
def hooks(client: conekta.ApiClient) -> conekta.WebhooksApi:
    return conekta.WebhooksApi(client)


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    hook = HookReceiver()
    yield hook
    hook.close()


def test_create_then_get_list_and_filter_by_url(hooks: conekta.WebhooksApi) -> None:
    created = hooks.create_webhook(
        conekta.WebhookRequest(url=UNREACHABLE, subscribed_events=["customer.created", "charge.paid"])
    )
    assert created.id is not None and HEX24.fullmatch(created.id)
    assert created.object == "webhook"
    assert created.url == UNREACHABLE
    assert created.livemode is False
    assert created.active is True
    assert created.status == "being_pinged"
    assert created.subscribed_events == ["customer.created", "charge.paid"]

    fetched = hooks.get_webhook(created.id)
    assert fetched.model_dump() == created.model_dump()

    other = hooks.create_webhook(conekta.WebhookRequest(url="https://example.com/conekta"))
    listed = hooks.get_webhooks()
    assert listed.object == "list" and listed.has_more is False
    assert [w.id for w in listed.data or []] == [other.id, created.id]
    by_url = hooks.get_webhooks(url="example.com")
    assert [w.id for w in by_url.data or []] == [other.id]


def test_omitted_subscriptions_mean_every_event_type(hooks: conekta.WebhooksApi) -> None:
    created = hooks.create_webhook(conekta.WebhookRequest(url=UNREACHABLE))
    events = created.subscribed_events or []
    for expected in ("customer.created", "customer.updated", "payment_source.created", "webhook_ping"):
        assert expected in events
    assert len(events) == len(set(events))


def test_update_url_subscriptions_and_active(hooks: conekta.WebhooksApi) -> None:
    created = hooks.create_webhook(conekta.WebhookRequest(url=UNREACHABLE))
    updated = hooks.update_webhook(
        created.id,
        conekta.UpdateWebhook(
            url="https://example.com/new", subscribed_events=["customer.deleted"], active=False
        ),
    )
    assert updated.url == "https://example.com/new"
    assert updated.subscribed_events == ["customer.deleted"]
    assert updated.active is False
    # The ping to the unreachable URL may fail meanwhile and move the status on; nothing else moves.
    fetched = hooks.get_webhook(created.id).model_dump()
    assert fetched.pop("status") in {"being_pinged", "intermittent_errors"}
    assert fetched == {k: v for k, v in updated.model_dump().items() if k != "status"}


def test_delete_then_get_is_404(hooks: conekta.WebhooksApi) -> None:
    created = hooks.create_webhook(conekta.WebhookRequest(url=UNREACHABLE))
    response = hooks.delete_webhook_with_http_info(created.id)
    assert response.status_code == 200
    assert json.loads(response.raw_data)["deleted"] is True
    assert response.data.id == created.id
    with pytest.raises(NotFoundException) as caught:
        hooks.get_webhook(created.id)
    body = error_of(caught.value)
    assert body["type"] == "resource_not_found_error"
    assert codes_of(body) == ["conekta.errors.resource_not_found.entity"]
    assert [w.id for w in hooks.get_webhooks().data or []] == []
    with pytest.raises(NotFoundException):
        hooks.delete_webhook(created.id)


def test_unknown_webhook_is_404_everywhere(hooks: conekta.WebhooksApi) -> None:
    for call in (
        lambda: hooks.get_webhook("0123456789abcdef01234567"),
        lambda: hooks.update_webhook("0123456789abcdef01234567", conekta.UpdateWebhook(active=True)),
        lambda: hooks.test_webhook("0123456789abcdef01234567"),
        lambda: hooks.delete_webhook("0123456789abcdef01234567"),
    ):
        with pytest.raises(NotFoundException):
            call()


def test_invalid_url_and_unknown_event_types_are_422(hooks: conekta.WebhooksApi) -> None:
    with pytest.raises(UnprocessableEntityException) as caught:
        hooks.create_webhook(conekta.WebhookRequest(url="ftp://example.com/hooks"))
    assert params_of(error_of(caught.value)) == ["url"]
    with pytest.raises(UnprocessableEntityException) as caught:
        hooks.create_webhook(
            conekta.WebhookRequest(url=UNREACHABLE, subscribed_events=["customer.created", "customer.eaten"])
        )
    body = error_of(caught.value)
    assert params_of(body) == ["subscribed_events[1]"]
    assert codes_of(body) == ["conekta.errors.parameter_validation.subscribed_events.invalid"]


def test_sdk_refuses_localhost_urls_before_sending() -> None:
    with pytest.raises(ValueError, match="regular expression"):
        conekta.WebhookRequest(url="http://localhost:8000/hooks")


def test_list_pages_with_limit_and_next(hooks: conekta.WebhooksApi) -> None:
    made = [hooks.create_webhook(conekta.WebhookRequest(url=f"{UNREACHABLE}/{i}")).id for i in range(3)]
    first = hooks.get_webhooks(limit=2)
    assert first.has_more is True
    assert [w.id for w in first.data or []] == [made[2], made[1]]
    assert first.next_page_url is not None
    cursor = (first.data or [])[-1].id
    second = hooks.get_webhooks(limit=2, next=cursor)
    assert [w.id for w in second.data or []] == [made[0]]
    assert second.has_more is False


def test_test_webhook_sends_a_ping(hooks: conekta.WebhooksApi, client: conekta.ApiClient) -> None:
    created = hooks.create_webhook(conekta.WebhookRequest(url=UNREACHABLE))
    tested = hooks.test_webhook(created.id)
    assert tested.id == created.id
    events = conekta.EventsApi(client).get_events(search="webhook_ping").data or []
    # One ping on creation, one for the test; each with one delivery to this webhook.
    assert len(events) == 2
    for event in events:
        assert event.type == "webhook_ping"
        assert event.data == {"livemode": False, "action": "ping"}
        [log] = event.webhook_logs or []
        assert log.url == UNREACHABLE
        assert log.id is not None and log.id.startswith("webhl_")


def test_deliveries_arrive_signed_and_the_event_shows_them(
    hooks: conekta.WebhooksApi, client: conekta.ApiClient, receiver: HookReceiver
) -> None:
    """The whole path: a webhook, a change, its event delivered, signed with the tenant's key."""
    url = receiver.url("/signed")
    created = hooks.create_webhook(conekta.WebhookRequest(url=url, subscribed_events=["customer.created"]))
    secret = json.loads(hooks.get_webhook_with_http_info(created.id).raw_data)["signing_secret"]
    customer = conekta.CustomersApi(client).create_customer(
        conekta.Customer(name="Ana", email="ana@example.com", phone="+5215555555555")
    )

    def delivered_customer() -> list[object]:
        return [d for d in receiver.received("/signed") if d.json()["type"] == "customer.created"]

    [delivery] = wait_until(delivered_customer, "the customer.created delivery")
    envelope = delivery.json()
    assert envelope["data"]["object"]["id"] == customer.id
    assert envelope["object"] == "event" and envelope["livemode"] is False

    # Conekta's Digest: RSA PKCS#1 v1.5 / SHA-256 over the exact body, by the account's active key.
    [key] = conekta.WebhookKeysApi(client).get_webhook_keys().data or []
    assert key.active is True and key.public_key is not None
    public = serialization.load_pem_public_key(key.public_key.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        base64.b64decode(delivery.headers["digest"]), delivery.body, padding.PKCS1v15(), hashes.SHA256()
    )
    # Standard Webhooks: HMAC-SHA256 of "id.timestamp.body" keyed with the whsec_ secret.
    assert delivery.headers["webhook-id"] == envelope["id"]
    signed = (
        f"{delivery.headers['webhook-id']}.{delivery.headers['webhook-timestamp']}.".encode() + delivery.body
    )
    expected = hmac.new(base64.b64decode(secret.removeprefix("whsec_")), signed, hashlib.sha256).digest()
    assert f"v1,{base64.b64encode(expected).decode()}" in delivery.headers["webhook-signature"].split()

    events = conekta.EventsApi(client)

    def successful() -> conekta.EventResponse | None:
        event = events.get_event(envelope["id"])
        return event if event.webhook_status == "successful" else None

    event = wait_until(successful, "the event to show its successful delivery")
    [log] = event.webhook_logs or []
    assert log.url == url
    assert log.failed_attempts == 0
    assert log.last_http_response_status == 200
    assert isinstance(log.last_attempted_at, int) and log.last_attempted_at >= envelope["created_at"]
    assert log.response_data == {"received": True, "by": "caja-tests"}
    # The delivered body is the event as the API shows it, without the delivery bookkeeping.
    shown = json.loads(events.get_event_with_http_info(envelope["id"]).raw_data)
    del shown["webhook_status"], shown["webhook_logs"]
    assert (envelope.pop("webhook_status"), envelope.pop("webhook_logs")) == ("pending", [])
    assert envelope == shown
    assert wait_until(lambda: hooks.get_webhook(created.id).status == "listening", "status listening")
