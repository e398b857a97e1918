"""Customers with recurrent payment sources, end to end through the official SDK (conekta==9.0.0)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import clabe
import conekta
import httpx
import pydantic
import pytest
from conekta.exceptions import NotFoundException, UnauthorizedException, UnprocessableEntityException

from tests.checks import (
    CONEKTA_STORE_NAMES,
    DAY,
    assert_png_barcode,
    codes_of,
    error_of,
    luhn_valid,
    params_of,
)
from tests.conftest import AccountKeys, Server


def cash(expires_at: int | None = None) -> conekta.CustomerPaymentMethodsRequest:
    return conekta.CustomerPaymentMethodsRequest(
        conekta.PaymentMethodCashRequest(type="cash_recurrent", expires_at=expires_at)
    )


def spei(expires_at: int | None = None) -> conekta.CustomerPaymentMethodsRequest:
    return conekta.CustomerPaymentMethodsRequest(
        conekta.PaymentMethodSpeiRequest(type="spei_recurrent", expires_at=expires_at)
    )


def new_customer(
    name: str = "Fulanito Pérez",
    email: str = "fulanito@example.com",
    phone: str = "+5218181818181",
    **extra: object,
) -> conekta.Customer:
    return conekta.Customer(name=name, email=email, phone=phone, **extra)


def sources_of(customer: conekta.CustomerResponse) -> list[object]:
    assert customer.payment_sources is not None
    return [item.actual_instance for item in customer.payment_sources.data or []]


def cursor(url: str | None, name: str) -> str:
    assert url is not None
    values = parse_qs(urlsplit(url).query)[name]
    assert len(values) == 1
    return values[0]


@pytest.fixture
def customers(sdk: conekta.ApiClient) -> conekta.CustomersApi:
    return conekta.CustomersApi(sdk)


# --- create and read -------------------------------------------------------------------------


def test_create_plain_customer_then_get_it(customers: conekta.CustomersApi) -> None:
    before = int(time.time())
    created = customers.create_customer(
        new_customer(
            name="Juan Perez",
            email="juan.perez@example.com",
            phone="+5215555555555",
            metadata={"plan": "gold", "seats": 3},
            custom_reference="crm-0042",
        )
    )
    after = int(time.time())

    assert created.id.startswith("cus_") and len(created.id) > len("cus_")
    assert created.object == "customer"
    assert created.livemode is False
    assert created.name == "Juan Perez"
    assert created.email == "juan.perez@example.com"
    assert created.phone == "+5215555555555"
    assert created.metadata == {"plan": "gold", "seats": 3}
    assert created.custom_reference == "crm-0042"
    assert created.corporate is False
    assert isinstance(created.created_at, int) and before - 5 <= created.created_at <= after + 5
    assert not (created.payment_sources and created.payment_sources.data)
    assert created.default_payment_source_id is None

    fetched = customers.get_customer_by_id(created.id)
    assert fetched.model_dump() == created.model_dump()


def test_antifraud_info_and_corporate_round_trip(customers: conekta.CustomersApi) -> None:
    created = customers.create_customer(
        new_customer(
            corporate=True,
            antifraud_info=conekta.CustomerAntifraudInfo(
                account_created_at=1_600_000_000, first_paid_at=1_600_000_100
            ),
        )
    )
    assert created.corporate is True
    assert created.antifraud_info is not None
    assert created.antifraud_info.account_created_at == 1_600_000_000
    assert created.antifraud_info.first_paid_at == 1_600_000_100
    fetched = customers.get_customer_by_id(created.id)
    assert fetched.corporate is True
    assert fetched.antifraud_info == created.antifraud_info


def test_each_customer_gets_its_own_id(customers: conekta.CustomersApi) -> None:
    ids = {customers.create_customer(new_customer()).id for _ in range(5)}
    assert len(ids) == 5


def test_create_with_cash_recurrent(customers: conekta.CustomersApi, server: Server) -> None:
    created = customers.create_customer(new_customer(payment_sources=[cash()]))
    [source] = sources_of(created)

    assert isinstance(source, conekta.PaymentMethodCashRecurrentResponse)
    assert source.type == "cash_recurrent"
    assert source.object == "payment_source"
    assert source.id.startswith("off_ref_")
    assert source.parent_id == created.id
    assert isinstance(source.created_at, int) and source.created_at == created.created_at
    assert source.reference is not None
    assert len(source.reference) == 20 and source.reference.isdigit()
    assert luhn_valid(source.reference)
    assert source.barcode == source.reference
    assert source.provider == "Cash"
    assert source.expires_at == 0  # born without expiry
    assert created.default_payment_source_id == source.id
    assert source.barcode_url is not None and source.reference in source.barcode_url
    assert source.barcode_url.startswith(server.base_url)
    assert_png_barcode(source.barcode_url)

    fetched = customers.get_customer_by_id(created.id)
    [again] = sources_of(fetched)
    assert isinstance(again, conekta.PaymentMethodCashRecurrentResponse)
    assert again.model_dump() == source.model_dump()


def test_cash_recurrent_lists_the_store_networks(customers: conekta.CustomersApi) -> None:
    """``store_names`` is not in the SDK's model, so read the raw body the SDK received."""
    response = customers.create_customer_with_http_info(new_customer(payment_sources=[cash()]))
    assert response.status_code == 200
    body = json.loads(response.raw_data)
    [source] = body["payment_sources"]["data"]
    assert source["store_names"] == CONEKTA_STORE_NAMES
    assert source["provider"] == "Cash"
    assert source["barcode"] == source["reference"]


def test_create_with_spei_recurrent(customers: conekta.CustomersApi) -> None:
    created = customers.create_customer(new_customer(payment_sources=[spei()]))
    [source] = sources_of(created)

    assert isinstance(source, conekta.PaymentMethodSpeiRecurrentResponse)
    assert source.type == "spei_recurrent"
    assert source.object == "payment_source"
    assert source.parent_id == created.id
    assert source.bank == "STP"
    assert source.reference is not None
    assert len(source.reference) == 18 and source.reference.isdigit()
    assert source.reference.startswith("646180")
    assert clabe.validate_clabe(source.reference)
    assert source.expires_at == "none"
    assert created.default_payment_source_id == source.id


def test_create_with_both_recurrent_sources(customers: conekta.CustomersApi) -> None:
    created = customers.create_customer(new_customer(payment_sources=[cash(), spei()]))
    cash_source, spei_source = sources_of(created)

    assert isinstance(cash_source, conekta.PaymentMethodCashRecurrentResponse)
    assert isinstance(spei_source, conekta.PaymentMethodSpeiRecurrentResponse)
    assert cash_source.id != spei_source.id
    assert cash_source.reference != spei_source.reference
    assert luhn_valid(cash_source.reference or "")
    assert clabe.validate_clabe(spei_source.reference or "")
    assert created.payment_sources is not None and created.payment_sources.has_more is False
    # The first source becomes the default one.
    assert created.default_payment_source_id == cash_source.id

    fetched = customers.get_customer_by_id(created.id)
    assert [s.id for s in sources_of(fetched)] == [cash_source.id, spei_source.id]


def test_references_are_unique_across_many_creations(
    customers: conekta.CustomersApi, sdk: conekta.ApiClient
) -> None:
    methods = conekta.PaymentMethodsApi(sdk)
    references: list[str] = []
    for _ in range(30):
        created = customers.create_customer(new_customer(payment_sources=[cash(), spei()]))
        references += [s.reference for s in sources_of(created)]  # type: ignore[attr-defined]
        for kind in (conekta.PaymentMethodCashRequest, conekta.PaymentMethodSpeiRequest):
            request = kind(
                type="cash_recurrent" if kind is conekta.PaymentMethodCashRequest else "spei_recurrent"
            )
            made = methods.create_customer_payment_methods(
                created.id, conekta.CreateCustomerPaymentMethodsRequest(request)
            )
            references.append(made.actual_instance.reference)
    assert len(references) == 120
    assert len(set(references)) == len(references)
    cash_refs = [r for r in references if len(r) == 20]
    clabes = [r for r in references if len(r) == 18]
    assert len(cash_refs) == len(clabes) == 60
    assert all(luhn_valid(r) for r in cash_refs)
    assert all(clabe.validate_clabe(r) and r.startswith("646180") for r in clabes)


def test_concurrent_creations_get_unique_references(
    server: Server, sdk_for: Callable[[str], conekta.ApiClient]
) -> None:
    def worker(_: int) -> list[str]:
        with sdk_for(server.api_key) as client:
            api = conekta.CustomersApi(client)
            found: list[str] = []
            for _ in range(8):
                created = api.create_customer(new_customer(payment_sources=[cash(), spei()]))
                found += [s.reference for s in sources_of(created)]  # type: ignore[attr-defined]
            return found

    with ThreadPoolExecutor(max_workers=8) as pool:
        references = [r for batch in pool.map(worker, range(8)) for r in batch]
    assert len(references) == 8 * 8 * 2
    assert len(set(references)) == len(references)
    assert all(luhn_valid(r) for r in references if len(r) == 20)
    assert all(clabe.validate_clabe(r) for r in references if len(r) == 18)


# --- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offset", [DAY + 120, 30 * DAY, 365 * DAY - 120], ids=["1-day", "30-days", "365-days"]
)
def test_cash_recurrent_expiry_from_one_to_365_days_is_accepted(
    customers: conekta.CustomersApi, offset: int
) -> None:
    expires_at = int(time.time()) + offset
    created = customers.create_customer(new_customer(payment_sources=[cash(expires_at)]))
    [source] = sources_of(created)
    assert isinstance(source, conekta.PaymentMethodCashRecurrentResponse)
    assert source.expires_at == expires_at
    [fetched] = sources_of(customers.get_customer_by_id(created.id))
    assert fetched.expires_at == expires_at  # type: ignore[attr-defined]


def test_cash_recurrent_expiry_zero_means_never(customers: conekta.CustomersApi) -> None:
    created = customers.create_customer(new_customer(payment_sources=[cash(0)]))
    [source] = sources_of(created)
    assert source.expires_at == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("offset", [DAY // 2, 400 * DAY, -DAY], ids=["half-day", "400-days", "past"])
def test_cash_recurrent_expiry_outside_range_is_rejected(
    customers: conekta.CustomersApi, offset: int
) -> None:
    expires_at = int(time.time()) + offset
    with pytest.raises(conekta.ApiException) as caught:
        customers.create_customer(new_customer(payment_sources=[cash(expires_at)]))
    assert caught.value.status == 422
    body = error_of(caught.value)
    assert body["type"] == "parameter_validation_error"
    assert params_of(body) == ["payment_sources[0].expires_at"]
    assert "expires_at" in codes_of(body)[0]


def test_spei_recurrent_expiry_is_an_iso8601_string(customers: conekta.CustomersApi) -> None:
    expires_at = int(time.time()) + 10 * DAY
    created = customers.create_customer(new_customer(payment_sources=[spei(expires_at)]))
    [source] = sources_of(created)
    assert isinstance(source, conekta.PaymentMethodSpeiRecurrentResponse)
    assert isinstance(source.expires_at, str)
    parsed = datetime.fromisoformat(source.expires_at.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None
    assert parsed == datetime.fromtimestamp(expires_at, tz=UTC)


# --- update -----------------------------------------------------------------------------------


def test_update_customer_fields_and_metadata(customers: conekta.CustomersApi) -> None:
    created = customers.create_customer(new_customer(metadata={"tier": "basic"}))
    updated = customers.update_customer(
        created.id,
        conekta.UpdateCustomer(
            name="Fulana Gómez",
            email="fulana@example.com",
            phone="+525511112222",
            metadata={"tier": "gold", "visits": 7},
            national_id="HEGG560427MVZRRL04",
            date_of_birth="24/07/1992",
        ),
    )
    assert updated.id == created.id
    assert updated.name == "Fulana Gómez"
    assert updated.email == "fulana@example.com"
    assert updated.phone == "+525511112222"
    assert updated.metadata == {"tier": "gold", "visits": 7}
    assert updated.national_id == "HEGG560427MVZRRL04"
    assert updated.date_of_birth == "24/07/1992"
    assert updated.created_at == created.created_at

    fetched = customers.get_customer_by_id(created.id)
    assert fetched.model_dump() == updated.model_dump()


def test_update_keeps_fields_not_sent(customers: conekta.CustomersApi) -> None:
    created = customers.create_customer(
        new_customer(phone="+525599998888", metadata={"a": "1"}, payment_sources=[spei()])
    )
    customers.update_customer(created.id, conekta.UpdateCustomer(name="Solo Nombre"))
    fetched = customers.get_customer_by_id(created.id)
    assert fetched.name == "Solo Nombre"
    assert fetched.email == created.email
    assert fetched.phone == "+525599998888"
    assert fetched.metadata == {"a": "1"}
    assert [s.id for s in sources_of(fetched)] == [s.id for s in sources_of(created)]


def test_update_clears_optional_fields_with_null(customers: conekta.CustomersApi, http: httpx.Client) -> None:
    """The SDK drops ``None`` fields, so a client clears a field with an explicit JSON null."""
    created = customers.create_customer(
        new_customer(
            phone="+525512345678",
            metadata={"k": "v"},
            custom_reference="ref-1",
            national_id="ABCD123",
            date_of_birth="1990-01-31",
        )
    )
    response = http.put(
        f"/customers/{created.id}",
        json={
            "phone": None,
            "metadata": None,
            "custom_reference": None,
            "national_id": None,
            "date_of_birth": None,
        },
    )
    assert response.status_code == 200, response.text
    fetched = customers.get_customer_by_id(created.id)
    assert fetched.phone is None
    assert not fetched.metadata
    assert not fetched.custom_reference
    assert fetched.national_id is None
    assert fetched.date_of_birth is None
    assert fetched.name == created.name and fetched.email == created.email


@pytest.mark.parametrize("field", ["name", "email"])
def test_update_cannot_clear_required_fields(
    customers: conekta.CustomersApi, http: httpx.Client, field: str
) -> None:
    created = customers.create_customer(new_customer())
    response = http.put(f"/customers/{created.id}", json={field: None})
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "parameter_validation_error"
    assert params_of(body) == [field]
    fetched = customers.get_customer_by_id(created.id)
    assert getattr(fetched, field) == getattr(created, field)


def test_update_default_payment_source(customers: conekta.CustomersApi) -> None:
    created = customers.create_customer(new_customer(payment_sources=[cash(), spei()]))
    cash_source, spei_source = sources_of(created)
    assert created.default_payment_source_id == cash_source.id  # type: ignore[attr-defined]
    updated = customers.update_customer(
        created.id,
        conekta.UpdateCustomer(default_payment_source_id=spei_source.id),  # type: ignore[attr-defined]
    )
    assert updated.default_payment_source_id == spei_source.id  # type: ignore[attr-defined]

    other = customers.create_customer(new_customer(payment_sources=[cash()]))
    [foreign] = sources_of(other)
    with pytest.raises(conekta.ApiException) as caught:
        customers.update_customer(
            created.id,
            conekta.UpdateCustomer(default_payment_source_id=foreign.id),  # type: ignore[attr-defined]
        )
    assert caught.value.status == 422
    assert params_of(error_of(caught.value)) == ["default_payment_source_id"]


# --- delete -----------------------------------------------------------------------------------


def test_delete_customer_then_get_is_404(customers: conekta.CustomersApi) -> None:
    created = customers.create_customer(new_customer(payment_sources=[cash()]))
    deleted = customers.delete_customer_by_id(created.id)
    assert deleted.id == created.id
    assert deleted.object == "customer"

    with pytest.raises(NotFoundException) as caught:
        customers.get_customer_by_id(created.id)
    assert caught.value.status == 404
    body = error_of(caught.value)
    assert body["type"] == "resource_not_found_error"
    assert body["details"][0]["code"] == "conekta.errors.resource_not_found.entity"
    assert created.id in body["details"][0]["debug_message"]

    with pytest.raises(NotFoundException):
        customers.delete_customer_by_id(created.id)
    with pytest.raises(NotFoundException):
        customers.update_customer(created.id, conekta.UpdateCustomer(name="Zombi"))
    listed = customers.get_customers(search=created.id)
    assert all(c.id != created.id for c in listed.data or [])


def test_deleting_a_customer_retires_its_payment_sources(
    customers: conekta.CustomersApi, sdk: conekta.ApiClient
) -> None:
    created = customers.create_customer(new_customer(payment_sources=[cash(), spei()]))
    customers.delete_customer_by_id(created.id)
    methods = conekta.PaymentMethodsApi(sdk)
    with pytest.raises(NotFoundException):
        methods.get_customer_payment_methods(created.id)
    with pytest.raises(NotFoundException):
        methods.create_customer_payment_methods(
            created.id,
            conekta.CreateCustomerPaymentMethodsRequest(
                conekta.PaymentMethodCashRequest(type="cash_recurrent")
            ),
        )


# --- list -------------------------------------------------------------------------------------


def test_list_customers_with_limit_next_previous_and_search(customers: conekta.CustomersApi) -> None:
    token = secrets.token_hex(6)
    made = [customers.create_customer(new_customer(name=f"Lista {token} {i}")).id for i in range(5)]
    newest_first = list(reversed(made))

    first = customers.get_customers(limit=2, search=token)
    assert first.object == "list"
    assert [c.id for c in first.data or []] == newest_first[:2]
    assert first.has_more is True
    assert first.previous_page_url is None

    second = customers.get_customers(limit=2, search=token, next=cursor(first.next_page_url, "next"))
    assert [c.id for c in second.data or []] == newest_first[2:4]
    assert second.has_more is True

    third = customers.get_customers(limit=2, search=token, next=cursor(second.next_page_url, "next"))
    assert [c.id for c in third.data or []] == newest_first[4:]
    assert third.has_more is False
    assert third.next_page_url is None

    back = customers.get_customers(
        limit=2, search=token, previous=cursor(third.previous_page_url, "previous")
    )
    assert [c.id for c in back.data or []] == newest_first[2:4]
    back_again = customers.get_customers(
        limit=2, search=token, previous=cursor(back.previous_page_url, "previous")
    )
    assert [c.id for c in back_again.data or []] == newest_first[:2]


def test_search_by_email_phone_and_id(customers: conekta.CustomersApi) -> None:
    token = secrets.token_hex(6)
    target = customers.create_customer(
        new_customer(name="Busqueda", email=f"busca.{token}@example.com", phone="+525500000001")
    )
    customers.create_customer(new_customer(name="Otro", email=f"otro.{token}@example.com"))

    by_email = customers.get_customers(search=f"busca.{token}")
    assert [c.id for c in by_email.data or []] == [target.id]
    by_id = customers.get_customers(search=target.id)
    assert [c.id for c in by_id.data or []] == [target.id]
    both = customers.get_customers(search=token)
    assert len(both.data or []) == 2
    # LIKE wildcards in a search are literal characters, not patterns.
    assert customers.get_customers(search=f"busca%{token}").data == []


def test_listed_customers_carry_their_payment_sources(customers: conekta.CustomersApi) -> None:
    token = secrets.token_hex(6)
    created = customers.create_customer(
        new_customer(name=f"Con fuentes {token}", payment_sources=[cash(), spei()])
    )
    [listed] = customers.get_customers(search=token).data or []
    assert listed.id == created.id
    assert [s.reference for s in sources_of(listed)] == [s.reference for s in sources_of(created)]  # type: ignore[attr-defined]


# --- errors -----------------------------------------------------------------------------------


def test_sdk_refuses_to_send_a_customer_without_name_or_email() -> None:
    with pytest.raises(pydantic.ValidationError):
        conekta.Customer(email="sin.nombre@example.com", phone="+525511112222")  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        conekta.Customer(name="Sin Correo", phone="+525511112222")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"email": "sin.nombre@example.com"}, ["name"]),
        ({"name": "Sin Correo"}, ["email"]),
        ({}, ["name", "email"]),
    ],
)
def test_missing_name_or_email_over_http(
    http: httpx.Client, body: dict[str, str], missing: list[str]
) -> None:
    response = http.post("/customers", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["object"] == "error" and error["type"] == "parameter_validation_error"
    assert sorted(params_of(error)) == sorted(missing)  # type: ignore[type-var]
    assert sorted(codes_of(error)) == sorted(
        f"conekta.errors.parameter_validation.{p}.missing" for p in missing
    )


@pytest.mark.parametrize("email", ["no-arroba", "dos@@example.com", "@example.com", "a@"])
def test_invalid_email_is_rejected(customers: conekta.CustomersApi, email: str) -> None:
    with pytest.raises(UnprocessableEntityException) as caught:
        customers.create_customer(new_customer(email=email))
    assert caught.value.status == 422
    body = error_of(caught.value)
    assert body["type"] == "parameter_validation_error"
    assert params_of(body) == ["email"]


def test_sdk_refuses_wrong_types_and_the_server_rejects_them_too(http: httpx.Client) -> None:
    with pytest.raises(pydantic.ValidationError):
        conekta.Customer(name=5, email="a@example.com", phone="+525511112222")  # type: ignore[arg-type]
    response = http.post(
        "/customers", json={"name": 5, "email": "a@example.com", "corporate": "yes", "metadata": []}
    )
    assert response.status_code == 422
    body = response.json()
    assert sorted(params_of(body)) == ["corporate", "metadata", "name"]  # type: ignore[type-var]
    assert all(code.endswith(".invalid_datatype") for code in codes_of(body))


def test_unknown_payment_source_type_is_rejected_clearly(
    sdk_for: Callable[[str], conekta.ApiClient], new_account: Callable[[str], AccountKeys]
) -> None:
    keys = new_account("Tipo desconocido")
    with sdk_for(keys.test_key) as client:
        api = conekta.CustomersApi(client)
        with pytest.raises(UnprocessableEntityException) as caught:
            api.create_customer(
                new_customer(
                    payment_sources=[
                        conekta.CustomerPaymentMethodsRequest(conekta.PaymentMethodCashRequest(type="card"))
                    ]
                )
            )
        body = error_of(caught.value)
        assert body["type"] == "parameter_validation_error"
        assert params_of(body) == ["payment_sources[0].type"]
        assert "card" in body["details"][0]["debug_message"]
        assert "cash_recurrent" in body["details"][0]["debug_message"]
        # Nothing was written.
        assert api.get_customers().data == []


def test_unknown_customer_is_404(customers: conekta.CustomersApi) -> None:
    missing = "cus_2NoExisteEsteCliente"
    for call in (
        lambda: customers.get_customer_by_id(missing),
        lambda: customers.update_customer(missing, conekta.UpdateCustomer(name="Nadie")),
        lambda: customers.delete_customer_by_id(missing),
    ):
        with pytest.raises(NotFoundException) as caught:
            call()
        body = error_of(caught.value)
        assert body["type"] == "resource_not_found_error"
        assert body["details"][0]["code"] == "conekta.errors.resource_not_found.entity"


def test_errors_follow_the_sdk_accept_language(customers: conekta.CustomersApi) -> None:
    messages = {}
    for language in ("es", "en"):
        with pytest.raises(NotFoundException) as caught:
            customers.get_customer_by_id("cus_2NoExisteEsteCliente", accept_language=language)
        messages[language] = error_of(caught.value)["details"][0]["message"]
    assert messages["es"] != messages["en"]
    assert "not found" in messages["en"].lower()


def test_wrong_key_is_401(sdk_for: Callable[[str], conekta.ApiClient]) -> None:
    with sdk_for("key_" + secrets.token_hex(16)) as client:
        api = conekta.CustomersApi(client)
        with pytest.raises(UnauthorizedException) as caught:
            api.get_customers()
        assert caught.value.status == 401
        body = error_of(caught.value)
        assert body["type"] == "authentication_error"
        with pytest.raises(UnauthorizedException):
            api.create_customer(new_customer())
