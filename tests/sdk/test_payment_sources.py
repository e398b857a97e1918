"""A customer's recurrent payment sources through the SDK's ``PaymentMethodsApi``."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import clabe
import conekta
import httpx
import pytest
from conekta.exceptions import NotFoundException, UnprocessableEntityException

from tests.checks import DAY, assert_png_barcode, error_of, luhn_valid, params_of


@pytest.fixture
def customers(sdk: conekta.ApiClient) -> conekta.CustomersApi:
    return conekta.CustomersApi(sdk)


@pytest.fixture
def methods(sdk: conekta.ApiClient) -> conekta.PaymentMethodsApi:
    return conekta.PaymentMethodsApi(sdk)


@pytest.fixture
def customer_id(customers: conekta.CustomersApi) -> str:
    created = customers.create_customer(
        conekta.Customer(name="Cliente Recurrente", email="recurrente@example.com", phone="+525512345678")
    )
    return str(created.id)


def cash_request(expires_at: int | None = None) -> conekta.CreateCustomerPaymentMethodsRequest:
    return conekta.CreateCustomerPaymentMethodsRequest(
        conekta.PaymentMethodCashRequest(type="cash_recurrent", expires_at=expires_at)
    )


def spei_request(expires_at: int | None = None) -> conekta.CreateCustomerPaymentMethodsRequest:
    return conekta.CreateCustomerPaymentMethodsRequest(
        conekta.PaymentMethodSpeiRequest(type="spei_recurrent", expires_at=expires_at)
    )


def listed_ids(methods: conekta.PaymentMethodsApi, customer_id: str) -> list[str]:
    page = methods.get_customer_payment_methods(customer_id, limit=250)
    return [item.actual_instance.id for item in page.data or []]


def test_create_cash_recurrent_source(
    methods: conekta.PaymentMethodsApi, customers: conekta.CustomersApi, customer_id: str
) -> None:
    before = int(time.time())
    made = methods.create_customer_payment_methods(customer_id, cash_request())
    source = made.actual_instance
    assert isinstance(source, conekta.PaymentMethodCashRecurrentResponse)
    assert source.type == "cash_recurrent"
    assert source.object == "payment_source"
    assert source.id.startswith("off_ref_")
    assert source.parent_id == customer_id
    assert isinstance(source.created_at, int) and source.created_at >= before - 5
    assert source.reference is not None and len(source.reference) == 20 and luhn_valid(source.reference)
    assert source.barcode == source.reference
    assert source.provider == "Cash"
    assert source.expires_at == 0
    assert source.barcode_url is not None
    assert_png_barcode(source.barcode_url)

    customer = customers.get_customer_by_id(customer_id)
    assert customer.payment_sources is not None
    assert [s.actual_instance.id for s in customer.payment_sources.data or []] == [source.id]
    # The first source of a customer becomes its default.
    assert customer.default_payment_source_id == source.id


def test_create_spei_recurrent_source(methods: conekta.PaymentMethodsApi, customer_id: str) -> None:
    made = methods.create_customer_payment_methods(customer_id, spei_request())
    source = made.actual_instance
    assert isinstance(source, conekta.PaymentMethodSpeiRecurrentResponse)
    assert source.type == "spei_recurrent"
    assert source.parent_id == customer_id
    assert source.bank == "STP"
    assert source.reference is not None and len(source.reference) == 18
    assert source.reference.startswith("646180")
    assert clabe.validate_clabe(source.reference)
    assert source.expires_at == "none"


def test_spei_recurrent_with_expiry_reports_iso8601(
    methods: conekta.PaymentMethodsApi, customer_id: str
) -> None:
    expires_at = int(time.time()) + 45 * DAY
    source = methods.create_customer_payment_methods(customer_id, spei_request(expires_at)).actual_instance
    assert isinstance(source, conekta.PaymentMethodSpeiRecurrentResponse)
    assert isinstance(source.expires_at, str)
    assert datetime.fromisoformat(source.expires_at.replace("Z", "+00:00")) == datetime.fromtimestamp(
        expires_at, tz=UTC
    )


def test_a_customer_can_hold_several_sources(methods: conekta.PaymentMethodsApi, customer_id: str) -> None:
    made = [
        methods.create_customer_payment_methods(customer_id, request).actual_instance
        for request in (cash_request(), spei_request(), cash_request(), spei_request())
    ]
    assert len({s.id for s in made}) == 4
    assert len({s.reference for s in made}) == 4
    assert sorted(listed_ids(methods, customer_id)) == sorted(s.id for s in made)


def test_list_payment_sources_pages_newest_first(
    methods: conekta.PaymentMethodsApi, customer_id: str
) -> None:
    made = [
        methods.create_customer_payment_methods(customer_id, cash_request()).actual_instance.id
        for _ in range(5)
    ]
    newest_first = list(reversed(made))

    first = methods.get_customer_payment_methods(customer_id, limit=2)
    assert first.object == "list"
    assert first.has_more is True
    assert [i.actual_instance.id for i in first.data or []] == newest_first[:2]
    assert first.next_page_url is not None

    seen = [i.actual_instance.id for i in first.data or []]
    page = first
    while page.next_page_url is not None:
        next_id = parse_qs(urlsplit(page.next_page_url).query)["next"][0]
        page = methods.get_customer_payment_methods(customer_id, limit=2, next=next_id)
        seen += [i.actual_instance.id for i in page.data or []]
    assert seen == newest_first
    assert page.has_more is False


def test_list_payment_sources_search_by_type(methods: conekta.PaymentMethodsApi, customer_id: str) -> None:
    cash_source = methods.create_customer_payment_methods(customer_id, cash_request()).actual_instance
    spei_source = methods.create_customer_payment_methods(customer_id, spei_request()).actual_instance
    only_spei = methods.get_customer_payment_methods(customer_id, search="spei_recurrent")
    assert [i.actual_instance.id for i in only_spei.data or []] == [spei_source.id]
    by_reference = methods.get_customer_payment_methods(customer_id, search=cash_source.reference)
    assert [i.actual_instance.id for i in by_reference.data or []] == [cash_source.id]


def test_update_cash_recurrent_expiry(
    methods: conekta.PaymentMethodsApi, customers: conekta.CustomersApi, customer_id: str
) -> None:
    source = methods.create_customer_payment_methods(customer_id, cash_request()).actual_instance
    expires_at = int(time.time()) + 90 * DAY
    updated = methods.update_customer_payment_methods(
        customer_id, source.id, conekta.UpdatePaymentMethodsCard(expires_at=expires_at)
    ).actual_instance
    assert isinstance(updated, conekta.PaymentMethodCashRecurrentResponse)
    assert updated.id == source.id
    assert updated.reference == source.reference  # the reference never changes
    assert updated.expires_at == expires_at

    customer = customers.get_customer_by_id(customer_id)
    assert customer.payment_sources is not None
    [stored] = [s.actual_instance for s in customer.payment_sources.data or []]
    assert stored.expires_at == expires_at


def test_update_spei_recurrent_expiry(methods: conekta.PaymentMethodsApi, customer_id: str) -> None:
    source = methods.create_customer_payment_methods(customer_id, spei_request()).actual_instance
    expires_at = int(time.time()) + 7 * DAY
    updated = methods.update_customer_payment_methods(
        customer_id, source.id, conekta.UpdatePaymentMethodsCard(expires_at=expires_at)
    ).actual_instance
    assert isinstance(updated, conekta.PaymentMethodSpeiRecurrentResponse)
    assert updated.reference == source.reference
    assert updated.expires_at is not None and updated.expires_at != "none"
    assert datetime.fromisoformat(updated.expires_at.replace("Z", "+00:00")).timestamp() == expires_at


def test_expiry_can_be_reset_to_never(
    methods: conekta.PaymentMethodsApi, customer_id: str, http: httpx.Client
) -> None:
    """The SDK's update model requires ``expires_at >= 1``, so 0 (never) goes over plain HTTP."""
    expires_at = int(time.time()) + 30 * DAY
    source = methods.create_customer_payment_methods(customer_id, cash_request(expires_at)).actual_instance
    assert source.expires_at == expires_at
    response = http.put(f"/customers/{customer_id}/payment_sources/{source.id}", json={"expires_at": 0})
    assert response.status_code == 200, response.text
    assert response.json()["expires_at"] == 0
    page = methods.get_customer_payment_methods(customer_id)
    assert [i.actual_instance.expires_at for i in page.data or []] == [0]


@pytest.mark.parametrize("offset", [DAY // 2, 400 * DAY], ids=["half-day", "400-days"])
def test_expiry_out_of_range_is_rejected_on_create_and_update(
    methods: conekta.PaymentMethodsApi, customer_id: str, offset: int
) -> None:
    expires_at = int(time.time()) + offset
    with pytest.raises(UnprocessableEntityException) as caught:
        methods.create_customer_payment_methods(customer_id, cash_request(expires_at))
    body = error_of(caught.value)
    assert body["type"] == "parameter_validation_error"
    assert params_of(body) == ["expires_at"]
    assert listed_ids(methods, customer_id) == []

    source = methods.create_customer_payment_methods(customer_id, cash_request()).actual_instance
    with pytest.raises(UnprocessableEntityException) as caught:
        methods.update_customer_payment_methods(
            customer_id, source.id, conekta.UpdatePaymentMethodsCard(expires_at=expires_at)
        )
    assert params_of(error_of(caught.value)) == ["expires_at"]
    [unchanged] = methods.get_customer_payment_methods(customer_id).data or []
    assert unchanged.actual_instance.expires_at == 0


def test_delete_payment_source(
    methods: conekta.PaymentMethodsApi, customers: conekta.CustomersApi, customer_id: str
) -> None:
    first = methods.create_customer_payment_methods(customer_id, cash_request()).actual_instance
    second = methods.create_customer_payment_methods(customer_id, spei_request()).actual_instance
    assert customers.get_customer_by_id(customer_id).default_payment_source_id == first.id

    deleted = methods.delete_customer_payment_methods(customer_id, first.id).actual_instance
    assert deleted.id == first.id
    assert deleted.reference == first.reference
    assert listed_ids(methods, customer_id) == [second.id]
    customer = customers.get_customer_by_id(customer_id)
    assert customer.payment_sources is not None
    assert [s.actual_instance.id for s in customer.payment_sources.data or []] == [second.id]
    # The default pointed at the deleted source; it must not dangle.
    assert customer.default_payment_source_id != first.id

    with pytest.raises(NotFoundException) as caught:
        methods.delete_customer_payment_methods(customer_id, first.id)
    assert error_of(caught.value)["type"] == "resource_not_found_error"
    with pytest.raises(NotFoundException):
        methods.update_customer_payment_methods(
            customer_id, first.id, conekta.UpdatePaymentMethodsCard(expires_at=int(time.time()) + 10 * DAY)
        )


def test_a_new_source_never_reuses_a_deleted_reference(
    methods: conekta.PaymentMethodsApi, customer_id: str
) -> None:
    retired = set()
    for request in (cash_request, spei_request) * 5:
        source = methods.create_customer_payment_methods(customer_id, request()).actual_instance
        retired.add(source.reference)
        methods.delete_customer_payment_methods(customer_id, source.id)
    fresh = {
        methods.create_customer_payment_methods(customer_id, request()).actual_instance.reference
        for request in (cash_request, spei_request) * 5
    }
    assert len(retired) == len(fresh) == 10
    assert not retired & fresh


def test_unknown_payment_source_type_card(methods: conekta.PaymentMethodsApi, customer_id: str) -> None:
    with pytest.raises(UnprocessableEntityException) as caught:
        methods.create_customer_payment_methods(
            customer_id,
            conekta.CreateCustomerPaymentMethodsRequest(conekta.PaymentMethodCashRequest(type="card")),
        )
    body = error_of(caught.value)
    assert body["type"] == "parameter_validation_error"
    assert params_of(body) == ["type"]
    message = body["details"][0]["debug_message"]
    assert "card" in message and "cash_recurrent" in message and "spei_recurrent" in message
    assert listed_ids(methods, customer_id) == []


def test_payment_sources_of_unknown_customer_are_404(methods: conekta.PaymentMethodsApi) -> None:
    missing = "cus_2" + secrets.token_hex(8)
    calls = (
        lambda: methods.get_customer_payment_methods(missing),
        lambda: methods.create_customer_payment_methods(missing, cash_request()),
        lambda: methods.delete_customer_payment_methods(missing, "off_ref_2xxxxxxxxxxxxxxxx"),
    )
    for call in calls:
        with pytest.raises(NotFoundException) as caught:
            call()
        assert error_of(caught.value)["type"] == "resource_not_found_error"


def test_a_source_is_reachable_only_through_its_own_customer(
    methods: conekta.PaymentMethodsApi, customers: conekta.CustomersApi, customer_id: str
) -> None:
    source = methods.create_customer_payment_methods(customer_id, cash_request()).actual_instance
    other = customers.create_customer(
        conekta.Customer(name="Otra Persona", email="otra@example.com", phone="+525500001111")
    )
    with pytest.raises(NotFoundException):
        methods.delete_customer_payment_methods(other.id, source.id)
    with pytest.raises(NotFoundException):
        methods.update_customer_payment_methods(
            other.id, source.id, conekta.UpdatePaymentMethodsCard(expires_at=int(time.time()) + 10 * DAY)
        )
    assert listed_ids(methods, customer_id) == [source.id]
