"""Pure rules of the job queue: the retry schedule, Retry-After, what is retryable, webhook health."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from caja.domain.jobs import (
    SVIX_SCHEDULE,
    Health,
    Next,
    RetryPolicy,
    Verdict,
    after_failure,
    after_success,
    classify,
    decide,
    parse_retry_after,
    parse_schedule,
)
from caja.domain.webhooks import WebhookStatus

NOW_MS = 1_800_000_000_000
DAY = 86_400


def test_the_default_schedule_is_svix() -> None:
    assert SVIX_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert RetryPolicy().max_attempts == 8


def test_each_retry_waits_its_step_within_the_jitter() -> None:
    policy = RetryPolicy(jitter=0.2)
    rng = random.Random(7)
    for attempt, step in enumerate(SVIX_SCHEDULE, start=1):
        delays = [policy.delay_before(attempt, rng) for _ in range(200)]
        assert all(d is not None and step * 0.8 <= d <= step * 1.2 for d in delays)
        if step:
            assert len(set(delays)) > 100  # spread, not one value
    assert policy.delay_before(9) is None


def test_decide_walks_the_schedule_then_gives_up() -> None:
    policy = RetryPolicy(schedule=(0, 5, 300), jitter=0)
    first = decide(ok=False, permanent=False, attempt=1, now_ms=NOW_MS, policy=policy)
    assert first.next is Next.RETRY and first.run_at == NOW_MS + 5_000
    second = decide(ok=False, permanent=False, attempt=2, now_ms=NOW_MS, policy=policy)
    assert second.next is Next.RETRY and second.run_at == NOW_MS + 300_000
    assert decide(ok=False, permanent=False, attempt=3, now_ms=NOW_MS, policy=policy).next is Next.FAIL
    assert decide(ok=True, permanent=False, attempt=3, now_ms=NOW_MS, policy=policy).next is Next.SUCCEED
    assert decide(ok=False, permanent=True, attempt=1, now_ms=NOW_MS, policy=policy).next is Next.FAIL


def test_retry_after_delays_but_never_hastens_and_is_capped() -> None:
    policy = RetryPolicy(schedule=(0, 5, 300), jitter=0, max_retry_after=3600)
    later = decide(ok=False, permanent=False, attempt=1, now_ms=NOW_MS, policy=policy, retry_after=120)
    assert later.run_at == NOW_MS + 120_000
    sooner = decide(ok=False, permanent=False, attempt=1, now_ms=NOW_MS, policy=policy, retry_after=1)
    assert sooner.run_at == NOW_MS + 5_000
    capped = decide(ok=False, permanent=False, attempt=1, now_ms=NOW_MS, policy=policy, retry_after=10**9)
    assert capped.run_at == NOW_MS + 3_600_000


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("120", NOW_MS, cap=3600) == 120
    assert parse_retry_after(" 7 ", NOW_MS, cap=3600) == 7
    assert parse_retry_after("99999", NOW_MS, cap=3600) == 3600
    when = datetime.fromtimestamp(NOW_MS / 1000, tz=UTC) + timedelta(seconds=90)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW_MS, cap=3600) == pytest.approx(90)
    past = datetime.fromtimestamp(NOW_MS / 1000, tz=UTC) - timedelta(hours=1)
    assert parse_retry_after(format_datetime(past, usegmt=True), NOW_MS, cap=3600) == 0
    for bad in (None, "", "soon", "-5", "1.5e3"):
        assert parse_retry_after(bad, NOW_MS, cap=3600) is None


def test_what_is_retryable() -> None:
    assert classify(200) is Verdict.SUCCESS and classify(204) is Verdict.SUCCESS
    assert classify(410) is Verdict.GONE
    for status in (None, 301, 400, 401, 404, 429, 500, 502, 503):
        assert classify(status) is Verdict.RETRY


def test_schedule_from_the_environment() -> None:
    assert parse_schedule("0, 5,300") == (0.0, 5.0, 300.0)
    with pytest.raises(ValueError):
        parse_schedule("0,-1")
    with pytest.raises(ValueError):
        parse_schedule("")


def test_health_transitions() -> None:
    listening = Health(WebhookStatus.LISTENING, None)
    failed = after_failure(listening, NOW_MS, disable_after=3 * DAY)
    assert failed.health == Health(WebhookStatus.INTERMITTENT_ERRORS, NOW_MS) and not failed.disabled
    # Later failures keep the start of the run.
    again = after_failure(failed.health, NOW_MS + 60_000, disable_after=3 * DAY)
    assert again.health.failing_since == NOW_MS and not again.changed
    # Past the period: disabled.
    gone_quiet = after_failure(failed.health, NOW_MS + 3 * DAY * 1000, disable_after=3 * DAY)
    assert gone_quiet.disabled and gone_quiet.health.status == WebhookStatus.DISABLED
    # One success ends the run.
    healed = after_success(failed.health)
    assert healed.health == Health(WebhookStatus.LISTENING, None) and healed.changed
    assert not after_success(listening).changed
    # being_pinged -> listening on the first success.
    assert after_success(Health(WebhookStatus.BEING_PINGED, None)).health.status == WebhookStatus.LISTENING
    # 410 disables at once; nothing changes a disabled webhook.
    gone = after_failure(listening, NOW_MS, disable_after=3 * DAY, gone=True)
    assert gone.disabled and gone.reason == "gone"
    disabled = gone.health
    assert not after_failure(disabled, NOW_MS + 1, disable_after=3 * DAY).changed
    assert not after_success(disabled).changed
