"""Assembling the dispatcher from settings: its HTTP client, the webhook handler, the registry."""

from __future__ import annotations

from caja.config import DeliverySettings
from caja.delivery import http
from caja.delivery.dispatcher import Dispatcher, DispatcherConfig, HandlerRegistry
from caja.delivery.priority import BackgroundLane
from caja.delivery.signing import SignatureWorkers
from caja.delivery.webhook_delivery import Opener, Signer, WebhookDelivery
from caja.domain.clock import Clock
from caja.domain.jobs import JobKind, RetryPolicy
from caja.store.uow import UnitOfWorkFactory


def retry_policy(settings: DeliverySettings) -> RetryPolicy:
    return RetryPolicy(
        schedule=settings.retry_schedule,
        jitter=settings.retry_jitter,
        max_retry_after=settings.max_retry_after,
    )


def new_registry(settings: DeliverySettings) -> HandlerRegistry:
    return HandlerRegistry(default_policy=retry_policy(settings))


def build_dispatcher(
    uow: UnitOfWorkFactory,
    clock: Clock,
    opener: Opener,
    settings: DeliverySettings,
    *,
    registry: HandlerRegistry | None = None,
    worker_id: str | None = None,
    lane: BackgroundLane | None = None,
    signing: SignatureWorkers | None = None,
) -> Dispatcher:
    """A dispatcher with the ``webhook`` handler registered (other kinds: add them to ``registry``)."""
    registry = registry or new_registry(settings)
    client = http.new_client(max_connections=settings.concurrency + 8)
    signer = Signer(uow, opener, signing)
    registry.register(
        JobKind.WEBHOOK.value,
        WebhookDelivery(
            signer,
            client,
            clock,
            timeout=settings.webhook_timeout,
            disable_after=settings.disable_after,
            max_retry_after=settings.max_retry_after,
        ),
    )
    config = DispatcherConfig(
        concurrency=settings.concurrency,
        per_endpoint=settings.per_endpoint,
        poll_interval=settings.poll_interval,
        lease=settings.lease,
        handler_deadline=settings.webhook_timeout + 30.0,
    )
    return Dispatcher(uow, clock, registry, config, worker_id=worker_id, on_stop=client.close, lane=lane)
