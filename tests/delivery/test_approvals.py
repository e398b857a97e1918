"""Synchronous approval calls against a real receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from caja import metrics, timing
from caja.delivery.approvals import ApprovalClient
from caja.delivery.signing import SignatureWorkers
from caja.domain.approvals import (
    LOOKUP,
    PAYMENT_ATTEMPT,
    ApprovalFailure,
    ApprovalFailureReason,
    ApprovalReply,
)
from caja.domain.jobs import JobKind, JobStatus
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import NewWebhook
from caja.services import webhooks
from tests.delivery.conftest import Hook, World
from tests.delivery.verify import verify_both
from tests.tools.receiver import Receiver, Reply, always

INBOUND = {
    "payment_method": {
        "service_name": "Cash",
        "object": "cash_payment",
        "type": "cash",
        "expires_at": 0,
        "reference": "10001432529593700513",
    },
    "charge_id": "5bb675388a268e0ef4a56a42",
    "livemode": False,
    "created_at": 0,
    "object": "inbound_payment",
    "amount": 0,
    "currency": "MXN",
    "customer_id": "cus_2jP5P8huCTWqcTtrn",
}


@pytest.fixture(params=[0, 1], ids=["signed-on-the-loop", "signed-in-a-thread"])
async def approvals(world: World, request: pytest.FixtureRequest) -> ApprovalClient:
    signing = SignatureWorkers(request.param)
    client = ApprovalClient(world.uow, world.clock, world.box, budget=2.0, signing=signing)
    yield client  # type: ignore[misc]
    await client.aclose()
    signing.close()


def counted(outcome: str) -> float:
    """Lookups answered with ``outcome`` so far, as ``/metrics`` shows them."""
    labels = {"event_type": LOOKUP, "outcome": outcome}
    return metrics.REGISTRY.get_sample_value("caja_merchant_approvals_total", labels) or 0.0


async def sync_hook(world: World, receiver: Receiver, path: str, reply: Reply) -> Hook:
    receiver.on(path, always(reply))
    return await world.webhook(receiver.url(path), synchronous=True)


async def test_payable_reply(world: World, receiver: Receiver, approvals: ApprovalClient) -> None:
    hook = await sync_hook(world, receiver, "/approve", Reply(200, b'{"payable": true}'))
    result = await approvals.request(world.tenant, PAYMENT_ATTEMPT, {**INBOUND, "amount": 110700})
    assert result == ApprovalReply(payable=True)
    (request,) = receiver.to("/approve")
    verify_both(request.body, request.headers, world.public_key, hook.secret)
    event = json.loads(request.body)
    assert event["type"] == PAYMENT_ATTEMPT and event["object"] == "event"
    assert event["data"] == {"object": {**INBOUND, "amount": 110700}, "previous_attributes": {}}
    assert event["webhook_status"] == "not_applicable" and event["webhook_logs"] == []
    assert event["livemode"] is False and request.headers["webhook-id"] == event["id"]


async def test_range_reply_and_the_call_is_logged(
    world: World, receiver: Receiver, approvals: ApprovalClient
) -> None:
    body = b'{"payable": true, "min_amount": 5000, "max_amount": 1000000}'
    hook = await sync_hook(world, receiver, "/range", Reply(200, body))
    result = await approvals.request(world.tenant, LOOKUP, INBOUND)
    assert result == ApprovalReply(payable=True, min_amount=5000, max_amount=1000000)
    event_id = json.loads(receiver.to("/range")[0].body)["id"]
    await approvals.flush()  # calls are logged in the background
    async with world.uow() as tx:
        (job,) = await tx.jobs.for_event(event_id)
        (attempt,) = await tx.jobs.attempts(job.id)
    assert job.kind == JobKind.APPROVAL and job.status is JobStatus.SUCCEEDED and job.webhook_id == hook.id
    assert job.attempts == 1
    assert attempt.http_status == 200 and attempt.response_body == body.decode() and attempt.url == hook.url
    assert attempt.request_headers is not None and "Digest" in attempt.request_headers


async def test_decline_with_a_failure_code(
    world: World, receiver: Receiver, approvals: ApprovalClient
) -> None:
    await sync_hook(world, receiver, "/no", Reply(200, b'{"payable": false, "failure_code": "15"}'))
    before = counted("not_payable")
    assert await approvals.request(world.tenant, LOOKUP, INBOUND) == ApprovalReply(False, failure_code="15")
    assert counted("not_payable") == before + 1


async def test_timeout_is_a_typed_failure_within_the_budget(
    world: World, receiver: Receiver, approvals: ApprovalClient
) -> None:
    await sync_hook(world, receiver, "/slow", Reply(200, b'{"payable": true}', delay=3.0))
    before = counted("timeout")
    started = time.monotonic()
    result = await approvals.request(world.tenant, LOOKUP, INBOUND)
    took = time.monotonic() - started
    assert isinstance(result, ApprovalFailure) and result.reason is ApprovalFailureReason.TIMEOUT
    assert counted("timeout") == before + 1
    # The whole budget was given (2 s), and the answer did not wait for the receiver's (3 s).
    assert 1.9 <= took < 3.0, took
    await approvals.flush()  # calls are logged in the background
    async with world.uow() as tx:
        event_id = json.loads(receiver.to("/slow")[0].body)["id"]
        (job,) = await tx.jobs.for_event(event_id)
        (attempt,) = await tx.jobs.attempts(job.id)
    assert job.status is JobStatus.FAILED and attempt.http_status is None
    assert attempt.error is not None and attempt.error.startswith("timeout")


async def test_bad_json(world: World, receiver: Receiver, approvals: ApprovalClient) -> None:
    await sync_hook(world, receiver, "/garbage", Reply(200, b"<html>OK</html>"))
    before = counted("bad_json")
    result = await approvals.request(world.tenant, LOOKUP, INBOUND)
    assert isinstance(result, ApprovalFailure) and result.reason is ApprovalFailureReason.BAD_JSON
    assert counted("bad_json") == before + 1


async def test_out_of_contract(world: World, receiver: Receiver, approvals: ApprovalClient) -> None:
    await sync_hook(
        world, receiver, "/odd", Reply(200, b'{"payable": true, "min_amount": 900, "max_amount": 100}')
    )
    result = await approvals.request(world.tenant, LOOKUP, INBOUND)
    assert isinstance(result, ApprovalFailure) and result.reason is ApprovalFailureReason.OUT_OF_CONTRACT
    assert "min_amount" in result.detail


async def test_bad_http_status(world: World, receiver: Receiver, approvals: ApprovalClient) -> None:
    await sync_hook(world, receiver, "/err", Reply(500, b'{"payable": true}'))
    result = await approvals.request(world.tenant, LOOKUP, INBOUND)
    assert isinstance(result, ApprovalFailure) and result.reason is ApprovalFailureReason.HTTP_STATUS
    assert result.http_status == 500


async def test_no_synchronous_webhook(world: World, receiver: Receiver, approvals: ApprovalClient) -> None:
    await world.webhook(receiver.url("/async-only"))  # an ordinary webhook is never asked
    before = counted("no_synchronous_webhook")
    result = await approvals.request(world.tenant, LOOKUP, INBOUND)
    assert isinstance(result, ApprovalFailure) and result.reason is ApprovalFailureReason.NO_WEBHOOK
    other = await approvals.request(Tenant(world.tenant.account_id, livemode=True), LOOKUP, INBOUND)
    assert isinstance(other, ApprovalFailure) and other.reason is ApprovalFailureReason.NO_WEBHOOK
    assert receiver.requests == []
    assert counted("no_synchronous_webhook") == before + 2


async def test_connection_refused(world: World, approvals: ApprovalClient) -> None:
    closed = Receiver()
    url = closed.url("/gone")
    closed.stop()
    await world.webhook(url, synchronous=True)
    result = await approvals.request(world.tenant, LOOKUP, INBOUND)
    assert isinstance(result, ApprovalFailure) and result.reason is ApprovalFailureReason.CONNECTION


async def test_a_webhook_changed_in_this_process_is_asked_at_once(
    world: World, receiver: Receiver, approvals: ApprovalClient
) -> None:
    """The synchronous webhooks are cached for a second, but a change made here empties the cache."""
    world.uow.add_webhooks_listener(approvals.forget_targets)
    first = await approvals.request(world.tenant, LOOKUP, INBOUND)
    assert isinstance(first, ApprovalFailure) and first.reason is ApprovalFailureReason.NO_WEBHOOK
    receiver.on("/new", always(Reply(200, b'{"payable": true}')))
    created = await webhooks.create(
        world.uow, world.clock, world.box, world.tenant, NewWebhook(receiver.url("/new"), synchronous=True)
    )
    assert await approvals.request(world.tenant, LOOKUP, INBOUND) == ApprovalReply(payable=True)
    await webhooks.update(world.uow, world.clock, world.box, world.tenant, created.id, {"active": False})
    after = await approvals.request(world.tenant, LOOKUP, INBOUND)
    assert isinstance(after, ApprovalFailure) and after.reason is ApprovalFailureReason.NO_WEBHOOK
    assert len(receiver.to("/new")) == 1


class SlowSignatures(SignatureWorkers):
    """Signatures that take ``delay`` seconds more than they do, as on a busy or slow machine."""

    def __init__(self, delay: float) -> None:
        super().__init__(0)
        self.delay = delay

    async def headers(self, *args: object, **kwargs: object) -> dict[str, str]:
        await asyncio.sleep(self.delay)
        return await super().headers(*args, **kwargs)  # type: ignore[arg-type]


async def test_the_merchants_time_starts_when_the_signed_request_is_sent(
    world: World, receiver: Receiver
) -> None:
    """Signing is Caja's work: Server-Timing's ``merchant`` must not hold it (it once did)."""
    await sync_hook(world, receiver, "/fast", Reply(200, b'{"payable": true}'))
    approvals = ApprovalClient(world.uow, world.clock, world.box, budget=2.0, signing=SlowSignatures(0.5))
    try:
        spent = timing.start()
        started = time.monotonic()
        assert await approvals.request(world.tenant, LOOKUP, INBOUND) == ApprovalReply(payable=True)
        assert time.monotonic() - started >= 0.5
        assert spent.merchant_calls == 1
        assert 0 < spent.merchant_seconds < 0.5, spent
    finally:
        await approvals.aclose()


async def test_a_merchant_that_times_out_is_charged_the_whole_wait(
    world: World, receiver: Receiver, approvals: ApprovalClient
) -> None:
    await sync_hook(world, receiver, "/late", Reply(200, b'{"payable": true}', delay=3.0))
    spent = timing.start()
    result = await approvals.request(world.tenant, LOOKUP, INBOUND)
    assert isinstance(result, ApprovalFailure) and result.reason is ApprovalFailureReason.TIMEOUT
    assert spent.merchant_seconds >= 1.8, spent  # nearly all of the 2 s budget was the merchant's
