"""Caja's webhook delivery benchmark: deliveries per second and commit-to-delivery latency.

Measures, against a loopback receiver that answers 200 at once (``delivery_receiver.py``, pinned
to core 1), with every Caja process pinned to core 0:

* **saturated throughput**: ``--events`` ``customer.created`` events committed up front, through
  a unit of work exactly as the customer service writes them (the fan-out enqueues one delivery
  per webhook in the same transaction), then the dispatchers started: deliveries per second from
  the first delivery to the last;
* **unsaturated latency**: customers created through the HTTP API (``POST /customers``) at a
  steady ``--rate`` per second for ``--steady-seconds``; per event, receiver time minus the time
  the API answered (the event was committed before that), p50/p99;

for SQLite with the dispatcher inside ``caja serve``, and for PostgreSQL with ``caja serve
--no-dispatcher`` and 1 and 3 ``caja worker`` processes. The peer, measured in the same run, is
a bare client loop (``delivery_peer.py``, on core 0 too, with the HTTP client Caja's dispatcher
uses: its own, or httpx or aiohttp in revisions before it) posting bodies and headers of the
same size to the same receiver with the same concurrency: what one process can push through that
client with nothing else to do. Caja's deliveries/s are reported as a ratio of it.

Writes ``bench/results/delivery-*.json`` (and ``delivery-latest.json``); ``--write-docs`` renders
the "Webhook deliveries" section of ``docs/performance.md`` from it (a marked block; the
customers sections around it are left alone). Also run as ``python bench/run.py --only delivery``.

    python bench/delivery.py                  # ~4 minutes
    python bench/delivery.py --quick          # 3,000 events, 5 s of steady load
    python bench/delivery.py --from-json bench/results/delivery-latest.json --write-docs
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DOCS = ROOT / "docs" / "performance.md"
VENV_BIN = Path(sys.executable).parent

sys.path.insert(0, str(BENCH))
import report  # noqa: E402
import run as suite  # noqa: E402

CAJA_CORE = suite.SERVER_CORE
CLIENT_CORE = suite.CLIENT_CORE
HEADERS = suite.CAJA_HEADERS


@dataclass(frozen=True)
class Config:
    name: str
    backend: str  # "sqlite" or "postgresql"
    workers: int  # 0: the dispatcher inside ``caja serve``


# The steady phase runs at ``--rate`` or this share of the configuration's saturated rate,
# whichever is lower: "not saturated" whatever the machine manages.
STEADY_SHARE = 0.5

CONFIGS = {
    "sqlite": Config("sqlite", "sqlite", 0),
    "postgresql-1": Config("postgresql-1", "postgresql", 1),
    "postgresql-3": Config("postgresql-3", "postgresql", 3),
}


@dataclass(frozen=True)
class Options:
    events: int
    rate: float
    steady_seconds: float
    concurrency: int | None
    per_endpoint: int | None
    timeout: float
    suite: suite.Options
    # Where several ``caja worker`` processes run (one process always runs on CAJA_CORE).
    workers_cores: str = "0,1"
    # Where SQLite's delivering ``caja serve`` runs ("0,1": its signing threads on the client's core).
    caja_cores: str = CAJA_CORE


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    """A free port in 19000–19999 (the range this machine's ad-hoc servers use)."""
    for _ in range(200):
        port = random.randint(19000, 19999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 19000-19999")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_summary(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"count": 0}
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "min_ms": round(min(ms), 2),
    }


# --------------------------------------------------------------------------------------------
# Processes


def caja_env(options: Options) -> dict[str, str]:
    env = {"CAJA_MAIL_CATCHER_PORT": str(free_port())}
    if options.concurrency is not None:
        env["CAJA_DISPATCHER_CONCURRENCY"] = str(options.concurrency)
    if options.per_endpoint is not None:
        env["CAJA_DISPATCHER_PER_ENDPOINT"] = str(options.per_endpoint)
    return env


def caja_serve(
    name: str, database_url: str, options: Options, *, dispatcher: bool, core: str = CAJA_CORE
) -> tuple[str, Any]:
    """``caja serve`` on ``core`` (``suite.server`` pins to core 0; an inner taskset moves it)."""
    port = free_port()
    command = ["taskset", "-c", core, *suite.caja_serve_command(port, database_url, "--no-mail-catcher")]
    if not dispatcher:
        command.append("--no-dispatcher")
    base = f"http://127.0.0.1:{port}"
    pg_database = None if database_url.startswith("sqlite") else suite.make_url(database_url).database
    running = suite.server(
        name, command, f"{base}/ready", {}, options.suite, 120, pg_database, caja_env(options)
    )
    return base, running


@contextlib.contextmanager
def caja_workers(
    count: int, database_url: str, options: Options, name: str
) -> Iterator[list[subprocess.Popen]]:
    """``count`` ``caja worker`` processes.

    One worker runs on Caja's core, like the in-process dispatcher and the peer; several run on
    ``options.workers_cores`` (both cores by default): scaling out is why one runs several.
    """
    cores = CAJA_CORE if count == 1 else options.workers_cores
    log_path = options.suite.log_dir / f"{name}-workers.log"
    with suite.caja_workers(count, database_url, cores, caja_env(options), log_path) as processes:
        yield processes


class ReceiverClient:
    """The receiver process (pinned to the client core) and its control paths."""

    def __init__(self, options: Options) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = options.suite.log_dir / "receiver.log"
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self.process: subprocess.Popen | None = None

    def url(self, path: str = "/hook") -> str:
        return f"{self.base}{path}"

    def start(self) -> ReceiverClient:
        command = [sys.executable, str(BENCH / "delivery_receiver.py"), "--port", str(self.port)]
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                ["taskset", "-c", CLIENT_CORE, *command], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.TransportError):
                if self.http.get("/_count").status_code == 200:
                    return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the receiver did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def count(self) -> int:
        return int(self.http.get("/_count").text)

    def reset(self) -> None:
        self.http.get("/_reset").raise_for_status()

    def records(self, since: int = 0) -> list[tuple[float, str]]:
        text = self.http.get("/_records", params={"since": since}).text
        out = []
        for line in text.splitlines():
            stamp, _, webhook_id = line.partition(" ")
            out.append((float(stamp), webhook_id))
        return out

    def sample(self) -> tuple[dict[str, str], bytes]:
        body = self.http.get("/_sample").json()
        return body["headers"], base64.b64decode(body["body"])


# --------------------------------------------------------------------------------------------
# CPU: Caja's processes, the receiver, PostgreSQL, this process, and everything else


def cpu_sample(caja_pids: list[int], receiver_pid: int, pg_running: suite.Running | None) -> dict[str, Any]:
    times = suite._cpu_times()
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "busy": times["cpu"][0],
        "total": times["cpu"][1],
        "caja_core_total": times[f"cpu{CAJA_CORE}"][1],
        "caja": {pid: suite._process_cpu(pid) for pid in caja_pids},
        "receiver": suite._process_cpu(receiver_pid),
        "client": own.ru_utime + own.ru_stime,
        "postgres": suite._postgres_cpu(pg_running) if pg_running else {},
    }


def cpu_usage(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    def delta(key: str) -> float:
        return sum(cpu - before[key].get(pid, 0.0) for pid, cpu in after[key].items())

    caja = delta("caja")
    postgres = delta("postgres")
    receiver = after["receiver"] - before["receiver"]
    client = after["client"] - before["client"]
    busy = after["busy"] - before["busy"]
    total = after["total"] - before["total"]
    other = max(busy - caja - postgres - receiver - client, 0.0)

    def pct(part: float, whole: float) -> float:
        return round(100 * part / whole, 1) if whole else 0.0

    return {
        "caja_s": round(caja, 2),
        "caja_pct": pct(caja, after["caja_core_total"] - before["caja_core_total"]),
        "receiver_s": round(receiver, 2),
        "postgres_s": round(postgres, 2),
        "client_s": round(client, 2),
        "other_s": round(other, 2),
        "other_pct": pct(other, total),
    }


# --------------------------------------------------------------------------------------------
# Writing events the way the services do


async def _write_backlog(database_url: str, webhook_id: str, base_url: str, count: int) -> list[str]:
    """``count`` ``customer.created`` events, 1,000 per unit of work, fanned out as in production."""
    from caja.domain import ids
    from caja.domain.clock import SystemClock
    from caja.domain.customers import Customer
    from caja.domain.events import new_event
    from caja.domain.representations import customer_json
    from caja.domain.tenancy import Tenant
    from caja.store.db import Database
    from caja.store.uow import UnitOfWorkFactory

    database = Database(database_url)
    uow = UnitOfWorkFactory(database)
    clock = SystemClock()
    event_ids: list[str] = []
    try:
        async with uow() as tx:
            target = await tx.deliveries.webhook(webhook_id)
        assert target is not None
        tenant = Tenant(target.account_id, target.livemode)
        for start in range(0, count, 1000):
            async with uow(write=True) as tx:
                for i in range(start, min(start + 1000, count)):
                    now = clock.now()
                    customer = Customer(
                        id=ids.new_id(ids.CUSTOMER),
                        account_id=tenant.account_id,
                        livemode=tenant.livemode,
                        name=f"Cliente Backlog {i}",
                        email=f"backlog{i}@example.com",
                        phone="+5215555555555",
                        corporate=False,
                        custom_reference="",
                        date_of_birth=None,
                        national_id=None,
                        metadata={},
                        antifraud_info=None,
                        default_payment_source_id=None,
                        created_at=now,
                        updated_at=now,
                    )
                    event = new_event(tenant, "customer.created", customer_json(customer, base_url), now)
                    tx.events.add(event)
                    event_ids.append(event.id)
    finally:
        await database.dispose()
    return event_ids


def peer_body() -> tuple[bytes, dict[str, str]]:
    """An envelope and signature headers of the sizes Caja sends (a real key and secret, signed once)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from caja.delivery.http import USER_AGENT
    from caja.delivery.signing import SigningKey, signature_headers
    from caja.domain.clock import SystemClock
    from caja.domain.customers import Customer
    from caja.domain.events import new_event
    from caja.domain.representations import customer_json, event_envelope
    from caja.domain.tenancy import Tenant

    now = SystemClock().now()
    tenant = Tenant("acc_peerpeerpeerpeerpe", False)
    customer = Customer(
        id="cus_peerpeerpeerpeerpe",
        account_id=tenant.account_id,
        livemode=False,
        name="Cliente Backlog 12345",
        email="backlog12345@example.com",
        phone="+5215555555555",
        corporate=False,
        custom_reference="",
        date_of_birth=None,
        national_id=None,
        metadata={},
        antifraud_info=None,
        default_payment_source_id=None,
        created_at=now,
        updated_at=now,
    )
    import orjson

    event = new_event(tenant, "customer.created", customer_json(customer, "http://127.0.0.1:19000"), now)
    body = orjson.dumps(event_envelope(event))
    key = SigningKey("whk_peer", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    signed = signature_headers(body, msg_id=event.id, timestamp=now, secret=secret, key=key)
    return body, {"Content-Type": "application/json", "User-Agent": USER_AGENT, **signed}


# --------------------------------------------------------------------------------------------
# Measurements


def wait_for(
    receiver: ReceiverClient, wanted: set[str], timeout: float, on_first: Any = None
) -> dict[str, float]:
    """Poll the receiver until every id in ``wanted`` came (or ``timeout``); first receipt per id."""
    first: dict[str, float] = {}
    seen = 0
    deadline = time.monotonic() + timeout
    started = False
    while True:
        records = receiver.records(seen)
        seen += len(records)
        if records and not started and on_first is not None:
            on_first()
        started = started or bool(records)
        for stamp, webhook_id in records:
            if webhook_id in wanted and webhook_id not in first:
                first[webhook_id] = stamp
        if len(first) >= len(wanted) or time.monotonic() > deadline:
            return first
        time.sleep(0.05 if not started else 0.25)


def duplicates(receiver: ReceiverClient, wanted: set[str]) -> int:
    counts: dict[str, int] = {}
    for _, webhook_id in receiver.records():
        if webhook_id in wanted:
            counts[webhook_id] = counts.get(webhook_id, 0) + 1
    return sum(n - 1 for n in counts.values())


def measure_saturated(
    receiver: ReceiverClient,
    event_ids: list[str],
    start_dispatchers: Any,
    caja_pids: Any,
    pg_running: suite.Running | None,
    options: Options,
) -> dict[str, Any]:
    """Start the dispatchers on a committed backlog; deliveries/s from the first delivery to the last."""
    wanted = set(event_ids)
    receiver.reset()
    assert receiver.process is not None
    marks: dict[str, Any] = {}

    def first_delivery() -> None:
        marks["cpu_before"] = cpu_sample(caja_pids(), receiver.process.pid, pg_running)  # type: ignore[union-attr]

    started = time.monotonic()
    start_dispatchers()
    timeout = max(120.0, len(wanted) / 40)
    first = wait_for(receiver, wanted, timeout, on_first=first_delivery)
    took_from_start = time.monotonic() - started
    after = cpu_sample(caja_pids(), receiver.process.pid, pg_running)
    stamps = sorted(first.values())
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    result: dict[str, Any] = {
        "events": len(wanted),
        "delivered": len(first),
        "missing": len(wanted) - len(first),
        "duplicates": duplicates(receiver, wanted),
        "seconds": round(span, 3),
        "deliveries_per_s": round((len(stamps) - 1) / span, 1) if span else 0.0,
        "seconds_from_start": round(took_from_start, 2),
    }
    if "cpu_before" in marks:
        result["cpu"] = cpu_usage(marks["cpu_before"], after)
        caja_s = result["cpu"]["caja_s"]
        result["deliveries_per_caja_cpu_s"] = round(len(first) / caja_s, 1) if caja_s else None
    return result


STEADY_CONNECTIONS = 32


async def _steady_load(base: str, rate: float, seconds: float) -> list[dict[str, Any]]:
    """``POST /customers`` at a fixed rate, open loop: each request is due at its time, whatever the
    previous ones did, and its latency counts from then (time spent waiting for a free connection
    included, so a slow server cannot hide its backlog).

    A bare HTTP/1.1 keep-alive client on ``STEADY_CONNECTIONS`` connections, not httpx: at a few
    hundred requests a second with many in flight, httpx's pool bookkeeping made this process the
    bottleneck (it used a whole core and fell to 60–100 requests a second).
    """
    url = httpx.URL(base)
    host, port = url.host, url.port or 80
    head = (
        f"POST /customers HTTP/1.1\r\nHost: {host}:{port}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        + "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    results: list[dict[str, Any]] = []

    async def connection() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (item := await queue.get()) is not None:
            i, due = item
            body = json.dumps({"name": f"Cliente Steady {i}", "email": f"steady{i}@example.com"}).encode()
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
                lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                fields = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                answer = await reader.readexactly(int(fields["content-length"]))
                answered = time.time()
                if fields.get("connection", "").lower() == "close":
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError, KeyError) as exc:
                results.append({"sent": due, "answered": time.time(), "status": None, "error": repr(exc)})
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            customer_id = json.loads(answer).get("id") if status == 200 else None
            results.append({"sent": due, "answered": answered, "status": status, "customer": customer_id})
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(STEADY_CONNECTIONS)]
    total = int(rate * seconds)
    start = time.monotonic() + 0.2
    wall = time.time() - time.monotonic()  # monotonic schedule, reported on the receiver's clock
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((i, due + wall))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return results


def event_ids_of_customers(database_url: str, since: int) -> dict[str, str]:
    """{customer id: its customer.created event id}, for events created since ``since`` (epoch s)."""
    query = f"SELECT id, data FROM events WHERE type = 'customer.created' AND created_at >= {int(since)}"
    if database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn:
            rows = conn.execute(query).fetchall()
    else:
        rows = [(r["id"], r["data"]) for r in suite.pg(database_url, query)[0]]
    out = {}
    for event_id, data in rows:
        obj = (json.loads(data) if isinstance(data, str) else data).get("object") or {}
        if obj.get("id"):
            out[obj["id"]] = event_id
    return out


def measure_steady(
    receiver: ReceiverClient,
    base: str,
    database_url: str,
    caja_pids: list[int],
    pg_running: suite.Running | None,
    options: Options,
    rate: float,
) -> dict[str, Any]:
    receiver.reset()
    assert receiver.process is not None
    since = int(time.time()) - 1
    before = cpu_sample(caja_pids, receiver.process.pid, pg_running)
    creates = asyncio.run(_steady_load(base, rate, options.steady_seconds))
    load_cpu_after = cpu_sample(caja_pids, receiver.process.pid, pg_running)
    ok = [c for c in creates if c["status"] == 200 and c.get("customer")]
    events_of = event_ids_of_customers(database_url, since)
    wanted = {events_of[c["customer"]] for c in ok if c["customer"] in events_of}
    first = wait_for(receiver, wanted, 60.0)
    from_answer, from_request, api = [], [], []
    for c in ok:
        event_id = events_of.get(c["customer"])
        api.append(c["answered"] - c["sent"])
        if event_id in first:
            from_answer.append(first[event_id] - c["answered"])
            from_request.append(first[event_id] - c["sent"])
    span = max(c["answered"] for c in creates) - min(c["sent"] for c in creates) if creates else 0.0
    return {
        "rate": rate,
        "max_rate": options.rate,
        "seconds": options.steady_seconds,
        "creates": len(creates),
        "created": len(ok),
        "achieved_rate": round(len(ok) / span, 1) if span else 0.0,
        "failed_creates": len(creates) - len(ok),
        "create_errors": [c.get("error") or c["status"] for c in creates if c not in ok][:5],
        "delivered": len(first),
        "missing": len(wanted) - len(first),
        "duplicates": duplicates(receiver, wanted),
        "commit_to_delivery": latency_summary(from_answer),
        "request_to_delivery": latency_summary(from_request),
        "api_latency": latency_summary(api),
        "cpu": cpu_usage(before, load_cpu_after),
    }


def job_stats(database_url: str) -> dict[str, int]:
    query = (
        "SELECT status, attempts, count(*) AS n FROM jobs WHERE kind = 'webhook' GROUP BY status, attempts"
    )
    if database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn:
            rows = conn.execute(query).fetchall()
    else:
        rows = [(r["status"], r["attempts"], r["n"]) for r in suite.pg(database_url, query)[0]]
    return {f"{status} after {attempts}": int(n) for status, attempts, n in rows}


def run_config(config: Config, receiver: ReceiverClient, options: Options) -> dict[str, Any]:
    log(f"== {report.delivery_label(config.name)}")
    result: dict[str, Any] = {"backend": config.backend, "workers": config.workers}
    with contextlib.ExitStack() as stack:
        if config.backend == "sqlite":
            database_url = suite.sqlite_work_file(stack, f"delivery-{config.name}", options.suite)
        else:
            database_url = stack.enter_context(
                suite.fresh_pg_database(
                    options.suite.postgres_url, f"delivery_{config.name.replace('-', '_')}"
                )
            )
        # The API, without a dispatcher: the webhook, then the backlog, all committed before any
        # dispatcher starts.
        setup = contextlib.ExitStack()
        stack.enter_context(setup)
        # PostgreSQL: the API server is the producer, not what is measured: on the client core, so
        # the worker keeps Caja's core to itself (SQLite's runs on Caja's core, with its dispatcher).
        api_core = CAJA_CORE if config.workers == 0 else CLIENT_CORE
        base, serving = caja_serve(
            f"delivery-{config.name}-api", database_url, options, dispatcher=False, core=api_core
        )
        api = setup.enter_context(serving)
        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
            created = client.post("/webhooks", json={"url": receiver.url("/hook")})
            if created.status_code != 200:
                raise RuntimeError(f"POST /webhooks answered {created.status_code}: {created.text}")
            webhook_id = created.json()["id"]
            result["webhook_keys"] = len(client.get("/webhook_keys").json().get("data", []))
        log(f"    committing {options.events:,} events")
        took = time.monotonic()
        event_ids = asyncio.run(_write_backlog(database_url, webhook_id, base, options.events))
        result["backlog_write_s"] = round(time.monotonic() - took, 2)
        pg_running = (
            suite.Running(api.pid, api.log_path, api.pg_database, options.suite.postgres_url)
            if config.backend == "postgresql"
            else None
        )
        pids: list[int] = []
        logs = [api.log_path]

        if config.workers == 0:
            # SQLite: the API server with its dispatcher is the one process doing everything.
            setup.close()
            holder: dict[str, Any] = {}

            def start() -> None:
                b, serving = caja_serve(
                    f"delivery-{config.name}", database_url, options, dispatcher=True, core=options.caja_cores
                )
                running = stack.enter_context(serving)
                holder["base"], holder["running"] = b, running
                pids.append(running.pid)
                logs.append(running.log_path)

        else:

            def start() -> None:
                workers = stack.enter_context(
                    caja_workers(config.workers, database_url, options, f"delivery-{config.name}")
                )
                pids.extend(w.pid for w in workers)
                holder["workers"] = workers
                logs.append(options.suite.log_dir / f"delivery-{config.name}-workers.log")

            holder = {"base": base}
            pids.append(api.pid)

        result["busy_before_pct"] = suite.wait_for_idle(options.suite)
        log(f"    saturated: {options.events:,} committed events, dispatchers started")
        result["saturated"] = measure_saturated(receiver, event_ids, start, lambda: pids, pg_running, options)
        sat = result["saturated"]
        log(
            f"    {sat['deliveries_per_s']:,.0f} deliveries/s "
            f"({sat['delivered']:,} in {sat['seconds']:.1f} s, "
            f"{sat['missing']} missing, {sat['duplicates']} twice), "
            f"other load {sat.get('cpu', {}).get('other_pct', float('nan')):.0f}%"
        )
        result["steady_busy_before_pct"] = suite.wait_for_idle(options.suite)
        # Unsaturated by construction: at most half the rate this configuration just sustained.
        rate = max(10.0, min(options.rate, round(STEADY_SHARE * sat["deliveries_per_s"] / 10) * 10))
        log(f"    steady: {rate:g} creates/s for {options.steady_seconds:g} s through the API")
        result["steady"] = measure_steady(
            receiver, holder["base"], database_url, pids, pg_running, options, rate
        )
        st = result["steady"]
        lat = st["commit_to_delivery"]
        log(
            f"    commit to delivery p50 {lat.get('p50_ms', float('nan')):.1f} ms, "
            f"p99 {lat.get('p99_ms', float('nan')):.1f} ms ({st['delivered']:,} delivered, "
            f"{st['missing']} missing), other load {st['cpu']['other_pct']:.0f}%"
        )
        result["jobs"] = job_stats(database_url)
        result["database"] = report.redact(database_url)
        stack.close()
        if "workers" in holder:
            result["worker_exit_codes"] = [w.returncode for w in holder["workers"]]
    errors = 0
    kinds: dict[str, int] = {}
    for path in logs:
        if path.exists():
            n, k = suite.server_log_errors(path)
            errors += n
            for kind, count in k.items():
                kinds[kind] = kinds.get(kind, 0) + count
    result["log_errors"], result["log_error_kinds"] = errors, kinds
    result["logs"] = [str(p.relative_to(ROOT)) for p in logs]
    return result


def caja_http_client() -> str:
    """The HTTP client library Caja's dispatcher posts with (the peer uses the same one)."""
    import caja.delivery.http as caja_http

    if hasattr(caja_http, "HttpClient"):
        return "caja"
    return "aiohttp" if hasattr(caja_http, "aiohttp") else "httpx"


def run_peer(
    receiver: ReceiverClient, options: Options, body_file: Path, headers_file: Path
) -> dict[str, Any]:
    """The bare client loop, pinned to Caja's core, timed by the receiver like Caja."""
    concurrency = options.per_endpoint or 8
    receiver.reset()
    assert receiver.process is not None
    command = [
        "taskset",
        "-c",
        CAJA_CORE,
        sys.executable,
        str(BENCH / "delivery_peer.py"),
        "--url",
        receiver.url("/peer"),
        "--requests",
        str(options.events),
        "--concurrency",
        str(concurrency),
        "--body-file",
        str(body_file),
        "--headers-file",
        str(headers_file),
        "--client",
        caja_http_client(),
    ]
    before_busy = suite._cpu_times()["cpu"]
    receiver_before = suite._process_cpu(receiver.process.pid)
    done = subprocess.run(command, capture_output=True, text=True, timeout=max(120, options.events / 100))
    after_busy = suite._cpu_times()["cpu"]
    if done.returncode != 0:
        raise RuntimeError(f"the peer failed:\n{done.stdout}\n{done.stderr}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("PEER_JSON "))
    own = json.loads(line.removeprefix("PEER_JSON "))
    stamps = sorted(t for t, _ in receiver.records())
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    busy = after_busy[0] - before_busy[0]
    total = after_busy[1] - before_busy[1]
    receiver_s = suite._process_cpu(receiver.process.pid) - receiver_before
    return {
        "requests": options.events,
        "received": len(stamps),
        "concurrency": concurrency,
        "seconds": round(span, 3),
        "deliveries_per_s": round((len(stamps) - 1) / span, 1) if span else 0.0,
        "client": own,
        "cpu": {
            "receiver_s": round(receiver_s, 2),
            "machine_busy_pct": round(100 * busy / total, 1) if total else 0.0,
        },
    }


# --------------------------------------------------------------------------------------------
# The run


def write_docs(data: dict, source: Path) -> None:
    existing = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    DOCS.write_text(report.with_delivery_section(existing, report.delivery_markdown(data, source)))
    log(f"wrote the webhook deliveries section of {DOCS.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="bench/delivery.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, help="events committed up front (default 10,000; --quick 3,000)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=200.0,
        help=f"steady creates per second (200), at most {STEADY_SHARE:.0%}% of the saturated rate",
    )
    parser.add_argument("--steady-seconds", type=float, help="seconds of steady load (default 15; --quick 5)")
    parser.add_argument("--quick", action="store_true", help="fewer events, shorter steady load")
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)} (all)"
    )
    parser.add_argument("--concurrency", type=int, help="CAJA_DISPATCHER_CONCURRENCY (Caja's default: 32)")
    parser.add_argument("--per-endpoint", type=int, help="CAJA_DISPATCHER_PER_ENDPOINT (Caja's default: 8)")
    parser.add_argument(
        "--workers-cores", default="0,1", help="taskset cores of several `caja worker`s (0,1; one: core 0)"
    )
    parser.add_argument(
        "--caja-cores",
        default=CAJA_CORE,
        help="taskset cores of SQLite's delivering `caja serve` (0; or 0,1)",
    )
    parser.add_argument("--idle-wait", type=int, default=20, help="wait up to this long for a quiet machine")
    parser.add_argument("--idle-threshold", type=float, default=15.0, help="%% busy counted as quiet (15)")
    parser.add_argument(
        "--postgres-url",
        default=suite.POSTGRES_ADMIN_URL,
        help="an admin connection; the run creates and drops its own databases",
    )
    parser.add_argument("--caja-ref", help="benchmark Caja as committed at this revision (e.g. HEAD)")
    parser.add_argument("--write-docs", action="store_true", help=f"render into {DOCS.relative_to(ROOT)}")
    parser.add_argument("--from-json", type=Path, help="render a previous run's JSON instead of running")
    args = parser.parse_args(argv)

    if args.from_json:
        data = json.loads(args.from_json.read_text())
        print(report.delivery_table(data))
        if args.write_docs:
            write_docs(data, args.from_json)
        return

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}")
    caja_commit = suite.use_caja_ref(args.caja_ref) if args.caja_ref else None
    # SIGTERM (e.g. ``timeout``) unwinds like Ctrl-C: every server, worker and database is cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # This process is the load generator: on the client core, with the receiver.
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / "work"
    log_dir = RESULTS / "logs" / f"delivery-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    options = Options(
        events=args.events or (3000 if args.quick else 10_000),
        rate=args.rate,
        steady_seconds=args.steady_seconds or (5.0 if args.quick else 15.0),
        concurrency=args.concurrency,
        per_endpoint=args.per_endpoint,
        timeout=10.0,
        workers_cores=args.workers_cores,
        caja_cores=args.caja_cores,
        suite=suite.Options(
            duration=0,
            warmup=0,
            connections=0,
            threads=0,
            timeout=0,
            postgres_url=args.postgres_url,
            workdir=workdir,
            log_dir=log_dir,
            idle_wait=args.idle_wait,
            idle_threshold=args.idle_threshold,
            repeat=1,
        ),
    )
    from caja.config import DeliverySettings

    defaults = DeliverySettings()
    started = time.monotonic()
    data: dict[str, Any] = {
        "started_at": suite.now_iso(),
        "command": " ".join(["python", "bench/delivery.py", *(argv if argv is not None else sys.argv[1:])]),
        "git": {
            "commit": caja_commit[:7] if caja_commit else suite.git("rev-parse", "--short", "HEAD"),
            "uncommitted_src_files": 0
            if caja_commit
            else len(suite.git("status", "--porcelain", "src").splitlines()),
            "caja_ref": args.caja_ref,
        },
        "settings": {
            "events": options.events,
            "rate": options.rate,
            "steady_share": STEADY_SHARE,
            "steady_seconds": options.steady_seconds,
            "concurrency": options.concurrency or defaults.concurrency,
            "per_endpoint": options.per_endpoint or defaults.per_endpoint,
            "poll_interval_s": defaults.poll_interval,
            "caja_core": CAJA_CORE,
            "workers_cores": args.workers_cores,
            "caja_cores": args.caja_cores,
            "http_client": caja_http_client(),
            "client_core": CLIENT_CORE,
            "idle_wait_s": args.idle_wait,
            "idle_threshold_pct": args.idle_threshold,
        },
        "machine": suite.machine(options.suite),
        "load_before": os.getloadavg(),
        "peer": {"runs": []},
        "results": {},
    }
    body, headers = peer_body()
    body_file, headers_file = workdir / "peer-body.json", workdir / "peer-headers.json"
    body_file.write_bytes(body)
    headers_file.write_text(json.dumps(headers))
    data["settings"]["body_bytes"] = len(body)
    data["settings"]["signature_header_bytes"] = sum(len(k) + len(v) for k, v in headers.items())
    receiver = ReceiverClient(options).start()
    try:
        for name in configs:
            # The peer before each configuration: both meet the same stretch of the machine's load.
            suite.wait_for_idle(options.suite)
            peer = run_peer(receiver, options, body_file, headers_file)
            data["peer"]["runs"].append(peer)
            log(f"== peer (bare {caja_http_client()} loop): {peer['deliveries_per_s']:,.0f} posts/s")
            data["results"][name] = run_config(CONFIGS[name], receiver, options)
            if name == configs[0]:
                sample_headers, sample_body = receiver.sample()
                data["settings"]["caja_sample"] = {
                    "body_bytes": len(sample_body),
                    "headers": sorted(sample_headers),
                }
    finally:
        receiver.stop()
    data["peer"]["best"] = max(data["peer"]["runs"], key=lambda p: p["deliveries_per_s"], default=None)
    data["load_after"] = os.getloadavg()
    data["elapsed_s"] = round(time.monotonic() - started, 1)

    out = RESULTS / f"delivery-{stamp}.json"
    out.write_text(json.dumps(data, indent=2) + "\n")
    shutil.copyfile(out, RESULTS / "delivery-latest.json")
    print(report.delivery_table(data))
    log(f"results: {out.relative_to(ROOT)}")
    if args.write_docs:
        write_docs(data, out)


if __name__ == "__main__":
    main()
