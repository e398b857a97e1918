"""Prometheus metrics: what an operator graphs and alerts on (``GET /metrics``, docs/operations.md).

Counters and histograms count what this process did (each ``caja serve`` is its own scrape
target, as Prometheus expects of a scaled-out service); the job backlog is read from the
database at each scrape, so every process reports the same backlog whichever one Prometheus asks.
Labels are bounded sets only (route templates, never paths with ids; failure codes from the
seed's table; job kinds), so no tenant's data can blow up the series count or leak into it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from caja.domain.jobs import JobBacklog

# Prometheus's text format, version 0.0.4: what generate_latest writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Not prometheus_client's global registry: only what Caja registers here is exposed, and the
# process, platform and garbage-collector collectors join it explicitly.
REGISTRY = CollectorRegistry(auto_describe=True)
for _standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_standard)

# From a cached read (~1 ms) to a slow merchant's 2-second budget and beyond.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_APPROVAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5)

http_requests = Counter(
    "caja_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
http_request_seconds = Histogram(
    "caja_http_request_duration_seconds",
    "Time from a request's arrival to its answer's last byte handed to the server.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
http_in_flight = Gauge(
    "caja_http_requests_in_flight",
    "HTTP requests this process is serving now.",
    registry=REGISTRY,
)
store_calls = Counter(
    "caja_store_calls",
    "Store network calls answered, by call and outcome (payable, paid, declined, reversed); "
    "declines carry the seed's failure code.",
    ["call", "outcome", "failure_code"],
    registry=REGISTRY,
)
merchant_approvals = Counter(
    "caja_merchant_approvals",
    "Calls to merchants' synchronous webhooks, by event type and outcome "
    "(payable, not_payable, or why no usable answer came).",
    ["event_type", "outcome"],
    registry=REGISTRY,
)
merchant_approval_seconds = Histogram(
    "caja_merchant_approval_seconds",
    "Time the merchants took to answer a synchronous webhook call, from the request sent to "
    "the answer read (the budget is 2 s).",
    ["event_type"],
    buckets=_APPROVAL_BUCKETS,
    registry=REGISTRY,
)
job_attempts = Counter(
    "caja_job_attempts",
    "Attempts of outbox jobs (webhook deliveries, e-mails) this process recorded, by kind and "
    "what became of the job: succeeded, retrying, failed (given up) or cancelled.",
    ["kind", "result"],
    registry=REGISTRY,
)
job_attempt_seconds = Histogram(
    "caja_job_attempt_duration_seconds",
    "Time one attempt of an outbox job took (a delivery's HTTP exchange, an e-mail's SMTP send).",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)

retention_passes = Counter(
    "caja_retention_passes",
    "Passes of the retention window this process ran, by result: ok or failed.",
    ["result"],
    registry=REGISTRY,
)
retention_deleted = Counter(
    "caja_retention_deleted_rows",
    "Rows this process's retention passes deleted: events (with their deliveries), jobs of no "
    "event (approval calls, e-mails), caught e-mails, store lookups.",
    ["table"],
    registry=REGISTRY,
)


M = TypeVar("M", bound=MetricWrapperBase)

# The series already made, by metric and label values: ``labels()`` validates and locks on every
# call (~2 µs, measured), and a payment touches five series. The label sets are bounded (see
# above), so this stays small.
_series: dict[tuple[object, ...], Any] = {}


def series(metric: M, *labels: str) -> M:
    """``metric.labels(*labels)``, made once."""
    key = (metric, *labels)
    found = _series.get(key)
    if found is None:
        found = _series[key] = metric.labels(*labels)
    return cast(M, found)


def count_store_call(call: str, answer: Mapping[str, Any]) -> None:
    """One answer to a store network: ``payable``/``paid``/``reversed``, or ``declined`` and its code."""
    code = answer.get("failure_code")
    if code:
        outcome = "declined"
    elif "payable" in answer:
        outcome = "payable" if answer["payable"] else "declined"
    else:
        outcome = str(answer.get("status", "unknown"))
    series(store_calls, call, outcome, str(code or "")).inc()


def count_in_flight(read: Callable[[], int]) -> None:
    """Report ``read()`` as the requests in flight (the app's own count, read at each scrape)."""
    http_in_flight.set_function(read)


class _BacklogCollector(Collector):
    def __init__(self, backlog: Sequence[JobBacklog], now_ms: int) -> None:
        self._backlog = backlog
        self._now_ms = now_ms

    def collect(self) -> Iterable[Metric]:
        jobs = GaugeMetricFamily(
            "caja_jobs",
            "Outbox jobs not finished yet (pending: waiting for their first or next attempt; "
            "running: held by a dispatcher), by kind, read from the database.",
            labels=["kind", "status"],
        )
        late = GaugeMetricFamily(
            "caja_jobs_oldest_due_seconds",
            "How long the oldest pending job of each kind has been due and not started: "
            "the outbox's lag (0 when nothing is due).",
            labels=["kind"],
        )
        lag: dict[str, float] = {}
        for row in self._backlog:
            jobs.add_metric([row.kind, row.status], row.count)
            if row.status == "pending":
                due = row.oldest_run_at_ms
                waited = 0.0 if due is None else max(0.0, (self._now_ms - due) / 1000)
                lag[row.kind] = max(lag.get(row.kind, 0.0), waited)
        for kind, seconds in sorted(lag.items()):
            late.add_metric([kind], seconds)
        yield jobs
        yield late


def exposition(backlog: Sequence[JobBacklog], now_ms: int) -> bytes:
    """This process's metrics and the job backlog, in Prometheus's text format."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_BacklogCollector(backlog, now_ms))
    return generate_latest(REGISTRY) + generate_latest(scrape)
