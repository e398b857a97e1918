"""The handler of ``webhook`` jobs: sign the event, POST it, and keep the webhook's health.

A job's payload is ``{"url": ..., "body": <event envelope>}``; the body is serialised once per
attempt and both signatures cover exactly the bytes sent. The webhook's current URL wins over
the one recorded when the event was written (an endpoint moved by its merchant gets its retries).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any, Protocol

import orjson

from caja.delivery import http
from caja.delivery.dispatcher import AttemptOutcome, JobContext
from caja.delivery.signing import SignatureWorkers, SigningKey, load_private_key
from caja.domain.clock import Clock
from caja.domain.events import new_event
from caja.domain.jobs import Decision, Job, Verdict, after_failure, classify, parse_retry_after
from caja.domain.representations import webhook_json
from caja.domain.tenancy import Tenant
from caja.domain.webhooks import WebhookStatus
from caja.store.deliveries import WebhookTarget
from caja.store.uow import UnitOfWork, UnitOfWorkFactory

WEBHOOK_DISABLED = "webhook.disabled"
# Targets and keys are read at most this often per webhook / tenant by one process.
CACHE_SECONDS = 1.0


class Opener(Protocol):
    """Opens values sealed at rest (``caja.delivery.keyring.SecretBox``)."""

    def open(self, token: str) -> str: ...


class ShortCache:
    """Values loaded at most once per ``CACHE_SECONDS`` per key; concurrent misses share one load."""

    def __init__(self) -> None:
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._loading: dict[Any, asyncio.Future[Any]] = {}

    async def get(self, key: Any, load: Callable[[], Awaitable[Any]]) -> Any:
        entry = self._entries.get(key)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters, if any, re-raise it
            raise
        else:
            future.set_result(value)
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + CACHE_SECONDS, value)
            return value
        finally:
            del self._loading[key]

    def drop(self, key: Any) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class Signer:
    """Everything needed to sign for a tenant and a webhook, read through a short cache."""

    def __init__(
        self, uow: UnitOfWorkFactory, opener: Opener, workers: SignatureWorkers | None = None
    ) -> None:
        self._uow = uow
        self._opener = opener
        self._workers = workers or SignatureWorkers()
        self._targets = ShortCache()
        self._keys = ShortCache()
        self._secrets: dict[str, str] = {}

    async def target(self, webhook_id: str) -> WebhookTarget | None:
        async def load() -> WebhookTarget | None:
            async with self._uow() as tx:
                return await tx.deliveries.webhook(webhook_id)

        return await self._targets.get(webhook_id, load)  # type: ignore[no-any-return]

    def forget(self, webhook_id: str) -> None:
        self._targets.drop(webhook_id)

    async def key(self, tenant: Tenant) -> SigningKey | None:
        async def load() -> SigningKey | None:
            async with self._uow() as tx:
                sealed = await tx.webhook_keys.active_signing_key(tenant)
            if sealed is None:
                return None
            key_id, sealed_pem = sealed
            return SigningKey(key_id, load_private_key(self._opener.open(sealed_pem)))

        return await self._keys.get(tenant, load)  # type: ignore[no-any-return]

    def secret(self, target: WebhookTarget) -> str:
        secret = self._secrets.get(target.sealed_secret)
        if secret is None:
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            secret = self._opener.open(target.sealed_secret)
            self._secrets[target.sealed_secret] = secret
        return secret

    async def headers(
        self, target: WebhookTarget, msg_id: str, body: bytes, timestamp: int
    ) -> dict[str, str]:
        key = await self.key(Tenant(target.account_id, target.livemode))
        secret = self.secret(target)
        return await self._workers.headers(body, msg_id=msg_id, timestamp=timestamp, secret=secret, key=key)


class WebhookDelivery:
    """The ``webhook`` job handler."""

    def __init__(
        self,
        signer: Signer,
        client: http.Client,
        clock: Clock,
        *,
        timeout: float,
        disable_after: float,
        max_retry_after: float,
    ) -> None:
        self._signer = signer
        self._client = client
        self._clock = clock
        self._timeout = timeout
        self._disable_after = disable_after
        self._max_retry_after = max_retry_after

    async def __call__(self, job: Job, context: JobContext) -> AttemptOutcome:
        if job.webhook_id is None:
            return AttemptOutcome(ok=False, permanent=True, error="a webhook job without a webhook")
        target = await self._signer.target(job.webhook_id)
        if target is None or not target.deliverable:
            return AttemptOutcome.skip("webhook deleted, inactive or disabled")
        envelope = job.payload.get("body")
        if not isinstance(envelope, dict):
            return AttemptOutcome(ok=False, permanent=True, error="a webhook job without a body")
        body = orjson.dumps(envelope)
        msg_id = str(envelope.get("id") or job.event_id or job.id)
        headers = await self._signer.headers(target, msg_id, body, self._clock.now())
        exchange = await http.post(
            self._client,
            target.url,
            body,
            headers,
            timeout=self._timeout,
            started_at_ms=self._clock.now_ms(),
            public_only=target.livemode,
        )
        verdict = classify(exchange.status)
        # Seen listening and not failing within the last second (and this process forgets that
        # whenever it records a failure): a success changes nothing, so no write for it.
        healthy_success = (
            verdict is Verdict.SUCCESS
            and target.status == WebhookStatus.LISTENING
            and target.failing_since is None
        )
        retry_after = None
        if exchange.response_headers is not None and verdict is Verdict.RETRY:
            retry_after = parse_retry_after(
                exchange.response_headers.get("retry-after"), self._clock.now_ms(), self._max_retry_after
            )
        return AttemptOutcome(
            ok=verdict is Verdict.SUCCESS,
            permanent=verdict is Verdict.GONE,
            retry_after=retry_after,
            started_at=exchange.started_at_ms,
            duration_ms=exchange.duration_ms,
            url=exchange.url,
            http_status=exchange.status,
            error=exchange.error or _status_error(exchange.status),
            request_headers=exchange.request_headers,
            request_body=body.decode("utf-8"),
            response_headers=exchange.response_headers,
            response_body=exchange.response_text if exchange.status is not None else None,
            settle=None if healthy_success else self._settler(target.id, verdict),
            # Successes to one webhook recorded together need its health touched once.
            settle_key=("listening", target.id) if verdict is Verdict.SUCCESS else None,
            # A failure may have changed the webhook: read it afresh for the next job (also after
            # the commit, in case a job read it between the change and the commit).
            after_commit=None if verdict is Verdict.SUCCESS else partial(self._signer.forget, target.id),
        )

    def _settler(self, webhook_id: str, verdict: Verdict) -> Any:
        async def settle(tx: UnitOfWork, _decision: Decision) -> None:
            await update_health(
                tx,
                self._clock,
                webhook_id,
                verdict,
                disable_after=self._disable_after,
            )
            if verdict is not Verdict.SUCCESS:
                self._signer.forget(webhook_id)

        return settle


async def update_health(
    tx: UnitOfWork, clock: Clock, webhook_id: str, verdict: Verdict, *, disable_after: float
) -> None:
    """Apply one attempt's result to a webhook's health, in the attempt's transaction.

    A success costs one conditional UPDATE (nothing when the webhook is already listening); a
    failure locks the webhook row, and when it disables the webhook it writes ``webhook.disabled``
    so the tenant's other webhooks hear of it.
    """
    if verdict is Verdict.SUCCESS:
        await tx.deliveries.mark_listening(webhook_id, clock.now())
        return
    target = await tx.deliveries.webhook(webhook_id, for_update=True)
    if target is None:
        return
    change = after_failure(target.health, clock.now_ms(), disable_after, gone=verdict is Verdict.GONE)
    if not change.changed:
        return
    await tx.deliveries.set_health(webhook_id, change.health, clock.now(), deactivate=change.disabled)
    if change.disabled:
        disabled = replace(
            target.as_webhook(), status=WebhookStatus.DISABLED, active=False, updated_at=clock.now()
        )
        tenant = Tenant(target.account_id, target.livemode)
        tx.events.add(new_event(tenant, WEBHOOK_DISABLED, webhook_json(disabled), clock.now()))
        tx.notify = True


def _status_error(status: int | None) -> str | None:
    return None if status is None or 200 <= status < 300 else f"HTTP {status}"
