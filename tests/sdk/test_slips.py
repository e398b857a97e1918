"""``voucher_url`` through the official SDK: its strict models do not know the field, and must
keep working with it (they drop it); the raw answer the SDK received carries it."""

from __future__ import annotations

import json

import conekta
import httpx

from tests.conftest import Server


def test_sdk_tolerates_voucher_url(sdk: conekta.ApiClient, server: Server) -> None:
    customers = conekta.CustomersApi(sdk)
    methods = conekta.PaymentMethodsApi(sdk)
    created = customers.create_customer(
        conekta.Customer(
            name="Cliente con Ficha",
            email="ficha@example.com",
            phone="+525512345678",
            payment_sources=[
                conekta.CustomerPaymentMethodsRequest(
                    conekta.PaymentMethodCashRequest(type="cash_recurrent", expires_at=0)
                )
            ],
        )
    )
    [source] = [s.actual_instance for s in created.payment_sources.data or []]
    assert isinstance(source, conekta.PaymentMethodCashRecurrentResponse)
    # conekta 9.0.0's model has no voucher_url: the SDK parses the source and leaves it out.
    assert not hasattr(source, "voucher_url")

    read = customers.get_customer_by_id(created.id)
    assert [s.actual_instance.id for s in read.payment_sources.data or []] == [source.id]
    listed = methods.get_customer_payment_methods(created.id)
    assert [i.actual_instance.id for i in listed.data or []] == [source.id]
    another = methods.create_customer_payment_methods(
        created.id,
        conekta.CreateCustomerPaymentMethodsRequest(conekta.PaymentMethodCashRequest(type="cash_recurrent")),
    ).actual_instance
    assert isinstance(another, conekta.PaymentMethodCashRecurrentResponse)

    raw = customers.get_customer_by_id_without_preload_content(created.id)
    body = json.loads(raw.read())
    voucher_url = body["payment_sources"]["data"][0]["voucher_url"]
    assert voucher_url == f"{server.base_url}/slips/{source.id}"
    slip = httpx.get(voucher_url, timeout=10.0)
    assert slip.status_code == 200 and source.reference in slip.text
