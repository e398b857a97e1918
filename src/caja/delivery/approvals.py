"""Synchronous approval calls: ask the merchant, within a hard total budget, whether a payment may go on.

``ApprovalClient.request(tenant, "inbound_payment.lookup", inbound_payment)`` POSTs the event
envelope (signed like every delivery) to the tenant's active synchronous webhooks at once and
returns an ``ApprovalReply`` or an ``ApprovalFailure``; it never raises for the merchant's
trouble. Nothing here is retried: a late answer is a declined payment. Each call is logged like
a delivery: a ``jobs`` row of kind ``approval``, finished at once, and its ``job_attempts`` row.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

import orjson
import structlog

from caja import admission, metrics, timing
from caja.delivery import http
from caja.delivery.signing import SignatureWorkers
from caja.delivery.webhook_delivery import Opener, ShortCache, Signer
from caja.domain import ids
from caja.domain.approvals import (
    ApprovalFailure,
    ApprovalFailureReason,
    ApprovalReply,
    ApprovalResult,
    combine,
    parse_reply,
)
from caja.domain.clock import Clock
from caja.domain.jobs import JOB_ID_PREFIX, RESPONSE_BODY_LIMIT, Attempt, JobKind, JobStatus
from caja.domain.tenancy import Tenant
from caja.store.deliveries import WebhookTarget
from caja.store.jobs import NewJob
from caja.store.uow import UnitOfWorkFactory

log = structlog.get_logger("caja.delivery.approvals")
# How long the background log writer lets approval calls gather before writing them.
LOG_GATHER_SECONDS = 0.05


def approval_envelope(
    tenant: Tenant, event_type: str, obj: dict[str, Any], event_id: str, now: int
) -> dict[str, Any]:
    """The event as Conekta sends approval calls (seed page 000): never stored, never fanned out."""
    return {
        "data": {"object": obj, "previous_attributes": {}},
        "livemode": tenant.livemode,
        "webhook_status": "not_applicable",
        "webhook_logs": [],
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created_at": now,
    }


class ApprovalClient:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        opener: Opener,
        *,
        budget: float = 2.0,
        client: http.Client | None = None,
        signing: SignatureWorkers | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._signer = Signer(uow, opener, signing)
        # The tenant's synchronous webhooks, read at most once a second (CACHE_SECONDS) by this
        # process, and again at once after this process changes any webhook (forget_targets).
        self._targets = ShortCache()
        self.budget = budget
        self._own_client = client is None
        self._client = client or http.new_client(max_connections=64)
        # Calls are logged in the background, many per transaction: the store's answer never
        # waits for the log, and a busy cash desk writes one log transaction, not one per call.
        self._pending_logs: list[tuple[NewJob, Attempt]] = []
        self._log_writer: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        await self.flush()
        if self._own_client:
            await self._client.close()

    async def flush(self) -> None:
        """Wait until every call made so far is in the log."""
        while self._log_writer is not None and not self._log_writer.done():
            await asyncio.shield(self._log_writer)

    def forget_targets(self) -> None:
        """Webhooks changed: read the synchronous ones again on the next call."""
        self._targets.clear()

    async def _synchronous_webhooks(self, tenant: Tenant) -> list[WebhookTarget]:
        async with self._uow(single_statement=True) as tx:
            return await tx.deliveries.synchronous_webhooks(tenant)

    async def request(
        self, tenant: Tenant, event_type: str, obj: dict[str, Any], *, budget: float | None = None
    ) -> ApprovalResult:
        """Ask every synchronous webhook of ``tenant``; the answer within ``budget`` seconds in all."""
        result = await self._request(tenant, event_type, obj, budget)
        if isinstance(result, ApprovalFailure):
            outcome = result.reason.value
        else:
            outcome = "payable" if result.payable else "not_payable"
        metrics.series(metrics.merchant_approvals, event_type, outcome).inc()
        return result

    async def _request(
        self, tenant: Tenant, event_type: str, obj: dict[str, Any], budget: float | None
    ) -> ApprovalResult:
        budget = self.budget if budget is None else budget
        deadline = time.monotonic() + budget
        try:
            async with asyncio.timeout(budget):
                targets = await self._targets.get(tenant, partial(self._synchronous_webhooks, tenant))
        except TimeoutError:
            return ApprovalFailure(ApprovalFailureReason.TIMEOUT, f"no answer within {budget:g} s")
        if not targets:
            return ApprovalFailure(
                ApprovalFailureReason.NO_WEBHOOK, "the account has no active synchronous webhook"
            )
        now = self._clock.now()
        event_id = ids.new_hex_id()
        body = orjson.dumps(approval_envelope(tenant, event_type, obj, event_id, now))
        # When the merchants had the request: from the first POST sent to the last answer read.
        # Signing each request before it is sent is Caja's work, not the merchant's.
        spans: list[tuple[float, float]] = []
        if len(targets) == 1:  # the usual case: no task per call
            results = [await self._call(targets[0], event_id, body, now, deadline, spans)]
        else:
            # One slot given up for all the merchant's webhooks (their signatures included).
            calls = (self._call(t, event_id, body, now, deadline, spans) for t in targets)
            with admission.Away():
                results = list(await asyncio.gather(*calls))
        if spans:
            merchant_seconds = max(end for _, end in spans) - min(start for start, _ in spans)
            timing.add_merchant_time(merchant_seconds)
            metrics.series(metrics.merchant_approval_seconds, event_type).observe(merchant_seconds)
        self._log(tenant, event_id, results)
        replies: list[ApprovalReply] = []
        for _target, result, _exchange in results:
            if isinstance(result, ApprovalFailure):
                return result
            replies.append(result)
        return combine(replies)

    async def _call(
        self,
        target: WebhookTarget,
        event_id: str,
        body: bytes,
        now: int,
        deadline: float,
        spans: list[tuple[float, float]],
    ) -> tuple[WebhookTarget, ApprovalResult, http.Exchange | None]:
        started_ms = self._clock.now_ms()
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                headers = await self._signer.headers(target, event_id, body, now)
            sent = time.perf_counter()
            with admission.Away():
                exchange = await http.post(
                    self._client,
                    target.url,
                    body,
                    headers,
                    timeout=max(deadline - time.monotonic(), 0.001),
                    started_at_ms=started_ms,
                    public_only=target.livemode,
                )
            spans.append((sent, time.perf_counter()))
        except TimeoutError:
            failure = ApprovalFailure(
                ApprovalFailureReason.TIMEOUT, "no answer within the budget", webhook_id=target.id
            )
            return target, failure, None
        result: ApprovalResult
        if exchange.error is not None:
            reason = ApprovalFailureReason.TIMEOUT if exchange.timed_out else ApprovalFailureReason.CONNECTION
            result = ApprovalFailure(reason, exchange.error, webhook_id=target.id)
        elif exchange.status is None or not 200 <= exchange.status < 300:
            result = ApprovalFailure(
                ApprovalFailureReason.HTTP_STATUS,
                f"the webhook answered HTTP {exchange.status}",
                http_status=exchange.status,
                webhook_id=target.id,
            )
        else:
            parsed = parse_reply(exchange.response_body)
            if isinstance(parsed, ApprovalFailure):
                parsed = ApprovalFailure(
                    parsed.reason, parsed.detail, http_status=exchange.status, webhook_id=target.id
                )
            result = parsed
        return target, result, exchange

    def _log(
        self,
        tenant: Tenant,
        event_id: str,
        results: list[tuple[WebhookTarget, ApprovalResult, http.Exchange | None]],
    ) -> None:
        now_ms = self._clock.now_ms()
        for target, result, exchange in results:
            job_id = ids.new_ordered_id(JOB_ID_PREFIX)
            error = f"{result.reason.value}: {result.detail}" if isinstance(result, ApprovalFailure) else None
            started = exchange.started_at_ms if exchange is not None else now_ms
            job = NewJob(
                id=job_id,
                kind=JobKind.APPROVAL.value,
                account_id=tenant.account_id,
                livemode=tenant.livemode,
                event_id=event_id,
                webhook_id=target.id,
                payload={"url": target.url},
                run_at=started,
                created_at=started,
                status=JobStatus.FAILED if error is not None else JobStatus.SUCCEEDED,
                attempts=1,
                finished_at=now_ms,
                last_status=exchange.status if exchange is not None else None,
                last_error=error,
                last_attempted_at=started,
            )
            attempt = Attempt(
                job_id=job_id,
                attempt=1,
                started_at=started,
                duration_ms=exchange.duration_ms if exchange is not None else now_ms - started,
                url=target.url,
                http_status=exchange.status if exchange is not None else None,
                error=error,
                request_headers=exchange.request_headers if exchange is not None else None,
                request_body=exchange.request_body.decode("utf-8") if exchange is not None else None,
                response_headers=exchange.response_headers if exchange is not None else None,
                response_body=exchange.response_text[:RESPONSE_BODY_LIMIT]
                if exchange is not None and exchange.status is not None
                else None,
            )
            self._pending_logs.append((job, attempt))
        if self._log_writer is None or self._log_writer.done():
            self._log_writer = asyncio.get_running_loop().create_task(
                self._write_logs(), context=timing.detached()
            )

    async def _write_logs(self) -> None:
        while self._pending_logs:
            # A moment's wait gathers the calls of a moderately busy desk into one transaction
            # (and one fsync) instead of one each; nobody waits for the log.
            await asyncio.sleep(LOG_GATHER_SECONDS)
            batch, self._pending_logs = self._pending_logs, []
            try:
                # Not durable: a log the machine's power takes with it loses no payment, and its
                # own fsync, 20 a second at a moderate rate, lengthened the stores' lookups (their
                # p99 16.5 against 24.3 ms without it, bench/cash_ab.py). Prompt: joined to a
                # payment's batch, its rows lengthened that payment's commit.
                async with self._uow(write=True, notify=False, durable=False, prompt=True) as tx:
                    await tx.jobs.log_finished(*(job for job, _ in batch))
                    await tx.jobs.record_attempts([attempt for _, attempt in batch])
            except Exception:
                log.exception("could not log approval calls", calls=len(batch))
