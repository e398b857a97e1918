"""From services to receivers: events written by use cases fan out, get delivered, signed, and a
disabled webhook's ``webhook.disabled`` reaches the account's other webhooks. Both backends."""

from __future__ import annotations

import json
from typing import Any

from caja.domain.customers import NewCustomer
from caja.domain.paging import PageRequest
from caja.domain.webhooks import NewWebhook, WebhookStatus
from caja.services import customers, webhook_keys, webhooks
from tests.delivery.conftest import World
from tests.delivery.verify import verify_both
from tests.tools.receiver import Receiver, Reply, always


def bodies(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.to(path)]


def types(receiver: Receiver, path: str) -> list[str]:
    return [b["type"] for b in bodies(receiver, path)]


async def test_service_events_reach_webhooks_and_a_gone_one_is_announced(
    world: World, receiver: Receiver
) -> None:
    receiver.on("/gone", always(Reply(410)))
    dispatcher = world.dispatcher()
    await dispatcher.start()
    try:
        listening = await webhooks.create(
            world.uow, world.clock, world.box, world.tenant, NewWebhook(url=receiver.url("/ok"))
        )
        await receiver.wait_for(lambda: "webhook_ping" in types(receiver, "/ok"), what="the first ping")
        gone = await webhooks.create(
            world.uow, world.clock, world.box, world.tenant, NewWebhook(url=receiver.url("/gone"))
        )
        # Its ping answers 410: disabled at once, and the other webhook hears of it.
        await receiver.wait_for(lambda: "webhook.disabled" in types(receiver, "/ok"), what="webhook.disabled")
        customer = await customers.create(
            world.uow,
            world.clock,
            world.tenant,
            NewCustomer(name="Ana", email="ana@example.com"),
            "http://caja.test",
        )
        await receiver.wait_for(lambda: "customer.created" in types(receiver, "/ok"), what="customer.created")
    finally:
        await dispatcher.stop()

    (disabled,) = [b for b in bodies(receiver, "/ok") if b["type"] == "webhook.disabled"]
    assert disabled["data"]["object"]["id"] == gone.id
    assert disabled["data"]["object"]["status"] == WebhookStatus.DISABLED
    assert disabled["data"]["object"]["active"] is False
    assert "signing_secret" not in disabled["data"]["object"]
    (created,) = [b for b in bodies(receiver, "/ok") if b["type"] == "customer.created"]
    assert created["data"]["object"]["id"] == customer.id
    # Nothing after the 410: not the customer, not its own disabling (its ping and its own
    # webhook.created were due together, and may both have been under way when the 410 came).
    assert set(types(receiver, "/gone")) <= {"webhook_ping", "webhook.created"}
    # Every delivery verifies with the account's webhook key and the webhook's own secret.
    keys = await webhook_keys.list_page(world.uow, world.tenant, PageRequest(limit=20))
    public_keys = [k.public_key for k in keys.items]
    for request in receiver.to("/ok"):
        assert any(
            _verifies(request.body, request.headers, pk, listening.signing_secret) for pk in public_keys
        )
    row = await world.database.run_sync(
        lambda c: c.exec_driver_sql(f"SELECT status, active FROM webhooks WHERE id = '{gone.id}'").one()
    )
    assert row.status == WebhookStatus.DISABLED and not row.active


def _verifies(body: bytes, headers: dict[str, str], public_key: str, secret: str) -> bool:
    try:
        verify_both(body, headers, public_key, secret)
    except Exception:
        return False
    return True
