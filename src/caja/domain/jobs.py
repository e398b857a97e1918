"""Jobs of the outbox: their states, when to try again, and what a delivery does to a webhook's health.

Pure rules, no I/O. Times are epoch milliseconds (``*_ms``) or seconds (``float``), as named.
The retry schedule is anchored on Svix's (0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h): the
first attempt runs at once, each retry waits its step, jittered so a burst of failures does not
come back as a burst, and never sooner than the receiver's ``Retry-After`` asks (capped).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from caja.domain.webhooks import WebhookStatus

JOB_ID_PREFIX = "webhl_"  # Conekta calls one webhook delivery a webhook_log: ``webhl_...``.

SVIX_SCHEDULE: tuple[float, ...] = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
DEFAULT_DISABLE_AFTER = 3 * 86_400.0
DEFAULT_MAX_RETRY_AFTER = 6 * 3600.0
RESPONSE_BODY_LIMIT = 4096


class JobStatus(enum.StrEnum):
    """pending -> running -> succeeded | failed (gave up) | cancelled; running -> pending (retry)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobKind(enum.StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    # A synchronous approval call, logged like a delivery and finished when it returns.
    APPROVAL = "approval"


@dataclass(frozen=True, slots=True)
class JobBacklog:
    """Unfinished jobs of one kind and status, and when the oldest due one of them was due."""

    kind: str
    status: str
    count: int
    # The earliest ``run_at`` (epoch ms) among those already due; None when none is due yet.
    oldest_run_at_ms: int | None


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of outbox work, as claimed by a dispatcher."""

    id: str
    kind: str
    account_id: str
    livemode: bool
    event_id: str | None
    webhook_id: str | None
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    run_at: int
    created_at: int
    lease_until: int | None = None
    worker: str | None = None

    @property
    def concurrency_key(self) -> str:
        """Jobs sharing a key share a per-endpoint concurrency limit (one webhook, or one kind)."""
        return self.webhook_id or self.kind


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a job, as recorded in ``job_attempts``: what was sent and what came back."""

    job_id: str
    attempt: int
    started_at: int  # epoch ms
    duration_ms: int
    url: str | None = None
    http_status: int | None = None
    error: str | None = None
    request_headers: dict[str, str] | None = None
    request_body: str | None = None
    response_headers: dict[str, str] | None = None
    response_body: str | None = None  # the first RESPONSE_BODY_LIMIT characters


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``schedule[n]`` is how long to wait before attempt ``n + 1`` (seconds); its length bounds tries."""

    schedule: tuple[float, ...] = SVIX_SCHEDULE
    jitter: float = 0.2
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER

    def __post_init__(self) -> None:
        if not self.schedule or any(step < 0 for step in self.schedule):
            raise ValueError("a retry schedule needs at least one step, none negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")

    @property
    def max_attempts(self) -> int:
        return len(self.schedule)

    def delay_before(self, attempt: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before attempt number ``attempt`` (1-based); None once the schedule is spent.

        Each step is spread uniformly over ±jitter of itself: retries of many jobs that failed
        together (an endpoint that went down) come back spread out instead of all at once.
        """
        if attempt < 1 or attempt > len(self.schedule):
            return None
        step = self.schedule[attempt - 1]
        if step == 0 or self.jitter == 0:
            return step
        spread = (rng or _RNG).uniform(-self.jitter, self.jitter)
        return step * (1 + spread)


_RNG = random.Random()  # jitter, not a secret


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"0,5,300"`` -> (0.0, 5.0, 300.0): the form the retry schedule takes in the environment."""
    steps = tuple(float(part) for part in text.replace(" ", "").split(",") if part)
    RetryPolicy(schedule=steps)  # validates
    return steps


def parse_retry_after(value: str | None, now_ms: int, cap: float) -> float | None:
    """``Retry-After`` (delay-seconds or an HTTP date) as seconds from now, capped; None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    seconds: float
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.fromtimestamp(now_ms / 1000, tz=UTC)).total_seconds()
    return min(max(seconds, 0.0), cap)


class Verdict(enum.StrEnum):
    SUCCESS = "success"
    RETRY = "retry"  # timeouts, connection errors, any status but 2xx and 410
    GONE = "gone"  # 410: the receiver says the endpoint is gone for good


def classify(http_status: int | None) -> Verdict:
    """What one HTTP attempt means: ``None`` (no response: timeout, refused, reset) is retryable."""
    if http_status is not None and 200 <= http_status < 300:
        return Verdict.SUCCESS
    if http_status == 410:
        return Verdict.GONE
    return Verdict.RETRY


class Next(enum.StrEnum):
    SUCCEED = "succeed"
    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Decision:
    next: Next
    run_at: int | None = None  # for RETRY, epoch ms


def decide(
    *,
    ok: bool,
    permanent: bool,
    attempt: int,
    now_ms: int,
    policy: RetryPolicy,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """After attempt number ``attempt`` (1-based): succeed, try again at some time, or give up."""
    if ok:
        return Decision(Next.SUCCEED)
    if permanent:
        return Decision(Next.FAIL)
    delay = policy.delay_before(attempt + 1, rng)
    if delay is None:
        return Decision(Next.FAIL)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after))
    return Decision(Next.RETRY, now_ms + round(delay * 1000))


@dataclass(frozen=True, slots=True)
class Health:
    """A webhook's delivery health: its status and when its current run of failures began (ms)."""

    status: str
    failing_since: int | None


@dataclass(frozen=True, slots=True)
class HealthChange:
    health: Health
    # True when this change disables the webhook: a ``webhook.disabled`` event goes out with it.
    disabled: bool = False
    reason: str | None = None
    changed: bool = field(default=True)


def after_success(current: Health) -> HealthChange:
    """A delivered event makes the webhook ``listening`` and ends its run of failures."""
    if current.status == WebhookStatus.DISABLED:
        return HealthChange(current, changed=False)
    new = Health(WebhookStatus.LISTENING.value, None)
    return HealthChange(new, changed=new != current)


def after_failure(current: Health, now_ms: int, disable_after: float, *, gone: bool = False) -> HealthChange:
    """A failed attempt: ``intermittent_errors`` from the first failure; ``disabled`` after 410 Gone or
    once failures have lasted longer than ``disable_after`` seconds without a success in between."""
    if current.status == WebhookStatus.DISABLED:
        return HealthChange(current, changed=False)
    since = current.failing_since if current.failing_since is not None else now_ms
    if gone:
        return HealthChange(Health(WebhookStatus.DISABLED.value, since), disabled=True, reason="gone")
    if now_ms - since >= disable_after * 1000:
        return HealthChange(Health(WebhookStatus.DISABLED.value, since), disabled=True, reason="failing")
    new = Health(WebhookStatus.INTERMITTENT_ERRORS.value, since)
    return HealthChange(new, changed=new != current)
