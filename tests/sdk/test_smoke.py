from __future__ import annotations

import conekta

from tests.conftest import Server


def test_create_and_fetch_customer_with_cash_recurrent_source(sdk: conekta.ApiClient, server: Server) -> None:
    api = conekta.CustomersApi(sdk)
    created = api.create_customer(
        conekta.Customer(
            name="Fulanito",
            email="fulanito@example.com",
            phone="+5218181818181",
            payment_sources=[
                conekta.CustomerPaymentMethodsRequest(conekta.PaymentMethodCashRequest(type="cash_recurrent"))
            ],
        )
    )
    assert created.id.startswith("cus_")
    assert created.livemode is False
    source = created.payment_sources.data[0].actual_instance
    assert isinstance(source, conekta.PaymentMethodCashRecurrentResponse)
    assert source.type == "cash_recurrent" and len(source.reference) == 20
    fetched = api.get_customer_by_id(created.id)
    assert fetched.id == created.id and fetched.name == "Fulanito"
