"""Webhook keys end to end through the official SDK (conekta==9.0.0), on a fresh account per test."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import conekta
import pytest
from conekta.exceptions import NotFoundException
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.checks import codes_of, error_of
from tests.conftest import AccountKeys

HEX24 = re.compile(r"[0-9a-f]{24}")


@pytest.fixture
def client(
    new_account: Callable[[str], AccountKeys], sdk_for: Callable[[str], conekta.ApiClient]
) -> Iterator[conekta.ApiClient]:
    with sdk_for(new_account("Webhook keys SDK").test_key) as api_client:
        yield api_client


@pytest.fixture
def keys(client: conekta.ApiClient) -> conekta.WebhookKeysApi:
    return conekta.WebhookKeysApi(client)


def rsa_public(pem: str | None) -> rsa.RSAPublicKey:
    assert pem is not None and pem.startswith("-----BEGIN PUBLIC KEY-----")
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def test_create_returns_an_rsa_public_key(keys: conekta.WebhookKeysApi) -> None:
    created = keys.create_webhook_key(webhook_key_request=conekta.WebhookKeyRequest(active=True))
    assert created.id is not None and HEX24.fullmatch(created.id)
    assert created.object == "webhook_key"
    assert created.active is True
    assert created.livemode is False
    assert isinstance(created.created_at, int) and created.created_at > 1_600_000_000
    assert rsa_public(created.public_key).key_size == 2048

    fetched = keys.get_webhook_key(created.id)
    assert fetched.id == created.id
    assert fetched.public_key == created.public_key
    assert fetched.deactivated_at is None
    # Never the private half, in any response.
    raw = keys.get_webhook_key_with_http_info(created.id).raw_data.decode()
    assert "PRIVATE" not in raw and "private_key" not in raw


def test_create_without_a_body_makes_an_active_key(keys: conekta.WebhookKeysApi) -> None:
    created = keys.create_webhook_key()
    assert created.active is True
    rsa_public(created.public_key)


def test_each_key_is_a_different_pair(keys: conekta.WebhookKeysApi) -> None:
    a = keys.create_webhook_key(webhook_key_request=conekta.WebhookKeyRequest())
    b = keys.create_webhook_key(webhook_key_request=conekta.WebhookKeyRequest())
    assert a.id != b.id
    assert rsa_public(a.public_key).public_numbers() != rsa_public(b.public_key).public_numbers()


def test_deactivate_and_reactivate(keys: conekta.WebhookKeysApi) -> None:
    created = keys.create_webhook_key(webhook_key_request=conekta.WebhookKeyRequest())
    off = keys.update_webhook_key(
        created.id, webhook_key_update_request=conekta.WebhookKeyUpdateRequest(active=False)
    )
    assert off.active is False
    assert isinstance(off.deactivated_at, int) and off.deactivated_at >= (created.created_at or 0)
    assert keys.get_webhook_key(created.id).active is False
    on = keys.update_webhook_key(
        created.id, webhook_key_update_request=conekta.WebhookKeyUpdateRequest(active=True)
    )
    assert on.active is True
    assert on.deactivated_at is None


def test_list_pages_newest_first(keys: conekta.WebhookKeysApi) -> None:
    made = [keys.create_webhook_key(webhook_key_request=conekta.WebhookKeyRequest()).id for _ in range(3)]
    listed = keys.get_webhook_keys()
    assert listed.object == "list" and listed.has_more is False
    assert [k.id for k in listed.data or []] == made[::-1]
    first = keys.get_webhook_keys(limit=2)
    assert first.has_more is True and [k.id for k in first.data or []] == [made[2], made[1]]
    second = keys.get_webhook_keys(limit=2, next=made[1])
    assert [k.id for k in second.data or []] == [made[0]]
    assert [k.id for k in keys.get_webhook_keys(search=made[1]).data or []] == [made[1]]


def test_delete_answers_deleted_then_404(keys: conekta.WebhookKeysApi) -> None:
    created = keys.create_webhook_key(webhook_key_request=conekta.WebhookKeyRequest())
    response = keys.delete_webhook_key_with_http_info(created.id)
    assert response.status_code == 200
    deleted = response.data
    assert deleted.id == created.id
    assert deleted.deleted is True
    assert deleted.active is False
    assert deleted.object == "webhook_key"
    assert "public_key" not in json.loads(response.raw_data)
    with pytest.raises(NotFoundException) as caught:
        keys.get_webhook_key(created.id)
    assert codes_of(error_of(caught.value)) == ["conekta.errors.resource_not_found.entity"]
    assert [k.id for k in keys.get_webhook_keys().data or []] == []


def test_key_changes_are_events(keys: conekta.WebhookKeysApi, client: conekta.ApiClient) -> None:
    created = keys.create_webhook_key(webhook_key_request=conekta.WebhookKeyRequest())
    keys.update_webhook_key(
        created.id, webhook_key_update_request=conekta.WebhookKeyUpdateRequest(active=False)
    )
    keys.delete_webhook_key(created.id)
    events = conekta.EventsApi(client).get_events().data or []
    assert [e.type for e in events] == ["webhook_key.deleted", "webhook_key.updated", "webhook_key.created"]
    assert all((e.data or {})["object"]["id"] == created.id for e in events)
    updated = events[1].data or {}
    assert updated["previous_attributes"] == {"active": True, "deactivated_at": None}
    assert "private_key" not in json.dumps([e.data for e in events])


def test_another_account_cannot_see_the_key(
    keys: conekta.WebhookKeysApi,
    new_account: Callable[[str], AccountKeys],
    sdk_for: Callable[[str], conekta.ApiClient],
) -> None:
    created = keys.create_webhook_key(webhook_key_request=conekta.WebhookKeyRequest())
    with sdk_for(new_account("Otro").test_key) as other_client:
        other = conekta.WebhookKeysApi(other_client)
        with pytest.raises(NotFoundException):
            other.get_webhook_key(created.id)
        with pytest.raises(NotFoundException):
            other.update_webhook_key(
                created.id, webhook_key_update_request=conekta.WebhookKeyUpdateRequest(active=False)
            )
        with pytest.raises(NotFoundException):
            other.delete_webhook_key(created.id)
        assert other.get_webhook_keys().data == []
    assert keys.get_webhook_key(created.id).active is True
