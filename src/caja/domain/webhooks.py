"""Webhooks: where an account's events are delivered, and the health of each endpoint."""

from __future__ import annotations

import enum

MAX_WEBHOOKS_PER_TENANT = 10


class WebhookStatus(enum.StrEnum):
    """Conekta's webhook statuses, plus ``disabled`` for endpoints Caja stopped delivering to.

    being_pinged: just created, its first delivery (a ``webhook_ping``) not yet answered.
    listening: the last delivery succeeded.
    intermittent_errors: deliveries are failing and being retried.
    disabled: failing for longer than the configured period, or answered 410 Gone.
    """

    BEING_PINGED = "being_pinged"
    LISTENING = "listening"
    INTERMITTENT_ERRORS = "intermittent_errors"
    DISABLED = "disabled"
