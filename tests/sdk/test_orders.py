"""Orders and charges made by store payments, read through the official SDK (conekta==9.0.0)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import conekta
import httpx
import pytest
from conekta.exceptions import NotFoundException

from tests.conftest import AccountKeys, Server
from tests.tools.receiver import Receiver, Reply, always


@pytest.fixture
def paid(
    server: Server, new_account: Callable[[str], AccountKeys]
) -> Iterator[tuple[AccountKeys, dict[str, str]]]:
    """An account whose customer paid 250.00 MXN at a store (through POST /payment_test)."""
    account = new_account("SDK Orders")
    receiver = Receiver().start()
    receiver.on("/sync", always(Reply(body=b'{"payable": true}')))
    try:
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {account.test_key}"}, timeout=15
        ) as api:
            api.post("/webhooks", json={"url": receiver.url("/sync"), "synchronous": True}).raise_for_status()
            customer = api.post(
                "/customers",
                json={
                    "name": "Luz",
                    "email": "luz@example.com",
                    "payment_sources": [{"type": "cash_recurrent"}],
                },
            ).json()
            reference = customer["payment_sources"]["data"][0]["reference"]
            answer = api.post(
                "/payment_test",
                json={
                    "event_type": "inbound_payment.payment_attempt",
                    "reference": reference,
                    "amount": 25_000,
                },
            ).json()
        assert answer["payment"]["status"] == "paid", answer
        yield (
            account,
            {"reference": reference, "customer_id": customer["id"], "charge_id": answer["charge_id"]},
        )
    finally:
        receiver.stop()


def test_orders_and_charges_through_the_sdk(
    paid: tuple[AccountKeys, dict[str, str]], sdk_for: Callable[[str], conekta.ApiClient]
) -> None:
    account, facts = paid
    with sdk_for(account.test_key) as client:
        orders_api = conekta.OrdersApi(client)
        listed = orders_api.get_orders(limit=10)
        assert isinstance(listed, conekta.GetOrdersResponse)
        assert len(listed.data) == 1
        order = listed.data[0]
        assert order.payment_status == "paid"
        assert order.amount == 25_000
        assert order.customer_info.customer_id == facts["customer_id"]
        charge = order.charges.data[0]
        assert charge.id == facts["charge_id"]
        method = charge.payment_method.actual_instance
        assert isinstance(method, conekta.PaymentMethodCash)
        assert method.reference == facts["reference"]
        assert method.object == "cash_payment"

        shown = orders_api.get_order_by_id(order.id)
        assert shown.id == order.id and shown.charges.data[0].status == "paid"
        assert orders_api.get_orders(payment_status="reversed").data == []
        assert [o.id for o in orders_api.get_orders(payment_status="paid").data] == [order.id]
        assert [o.id for o in orders_api.get_orders(search=facts["reference"]).data] == [order.id]

        charges = conekta.ChargesApi(client).get_charges(limit=5)
        assert isinstance(charges, conekta.GetChargesResponse)
        assert [c.id for c in charges.data] == [facts["charge_id"]]
        assert charges.data[0].order_id == order.id
        assert charges.data[0].amount == 25_000

        with pytest.raises(NotFoundException):
            orders_api.get_order_by_id("ord_2doesnotexist1234")


def test_the_sdks_dotted_filters_filter(
    server: Server, paid: tuple[AccountKeys, dict[str, str]], sdk_for: Callable[[str], conekta.ApiClient]
) -> None:
    """The SDK sends the spec's names (``created_at.gte``, ``last_payment_info.status``): each
    must narrow the list, not be ignored; Caja's older underscore names still work too."""
    account, _facts = paid
    with sdk_for(account.test_key) as client:
        orders_api = conekta.OrdersApi(client)
        [order] = orders_api.get_orders().data
        made, changed = order.created_at, order.updated_at
        assert [o.id for o in orders_api.get_orders(created_at_gte=made, created_at_lte=made).data] == [
            order.id
        ]
        assert orders_api.get_orders(created_at_gte=made + 1).data == []
        assert orders_api.get_orders(created_at_lte=made - 1).data == []
        assert orders_api.get_orders(updated_at_gte=changed + 1).data == []
        assert orders_api.get_orders(updated_at_lte=changed - 1).data == []
        assert [o.id for o in orders_api.get_orders(last_payment_info_status="paid").data] == [order.id]
        assert orders_api.get_orders(last_payment_info_status="reversed").data == []
    headers = {"Authorization": f"Bearer {account.test_key}"}
    older = httpx.get(f"{server.base_url}/orders", params={"created_at_gte": made + 1}, headers=headers)
    assert older.json()["data"] == []
    bad = httpx.get(f"{server.base_url}/orders", params={"created_at.gte": "abc"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["details"][0]["param"] == "created_at.gte"


def test_another_accounts_orders_are_invisible(
    paid: tuple[AccountKeys, dict[str, str]],
    new_account: Callable[[str], AccountKeys],
    sdk_for: Callable[[str], conekta.ApiClient],
) -> None:
    account, _ = paid
    stranger = new_account("Stranger")
    with sdk_for(account.test_key) as owner:
        order_id = conekta.OrdersApi(owner).get_orders().data[0].id
    with sdk_for(stranger.test_key) as client:
        assert conekta.OrdersApi(client).get_orders().data == []
        assert conekta.ChargesApi(client).get_charges().data == []
        with pytest.raises(NotFoundException):
            conekta.OrdersApi(client).get_order_by_id(order_id)
    with sdk_for(account.live_key) as live:
        assert conekta.OrdersApi(live).get_orders().data == []
