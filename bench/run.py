"""Caja's benchmark: customers created and read per second, against localstripe, in one run.

Measures, with wrk (pinned to core 1) against a server pinned to core 0, on loopback only:

* ``POST /customers`` (with one ``cash_recurrent`` payment source) and ``GET /customers/{id}``
  on Caja with SQLite and with PostgreSQL, and ``POST``/``GET /v1/customers`` on localstripe;
* Caja's create rate on databases seeded with 1,000,000 customers (``--million-rows``), against
  the empty-database rate of the same run.

Writes a table to stdout and ``bench/results/run-*.json`` (and ``latest.json``); ``--write-docs``
also renders ``docs/performance.md`` from that JSON (``--from-json FILE --write-docs`` re-renders
without running anything).

    python bench/run.py                  # everything, ~7 minutes plus the first seeding (~4)
    python bench/run.py --quick          # one 5 s measurement each, no 1M stage
    python bench/run.py --write-docs     # and regenerate docs/performance.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LUA = BENCH / "wrk" / "customers.lua"
DOCS = ROOT / "docs" / "performance.md"
# The PostgreSQL administrator's URL the benchmarks make their databases through.
POSTGRES_ADMIN_URL = os.environ.get(
    "CAJA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
VENV_BIN = Path(sys.executable).parent

sys.path.insert(0, str(BENCH))
import report  # noqa: E402

CAJA_KEY = "key_benchbenchbench1"
STRIPE_KEY = "sk_test_benchbenchbench1"
CAJA_HEADERS = {
    "Authorization": f"Bearer {CAJA_KEY}",
    "Accept": "application/vnd.conekta-v2.3.0+json",
}
STRIPE_HEADERS = {"Authorization": f"Bearer {STRIPE_KEY}"}
LOCALSTRIPE_PICKLE = Path("/tmp/localstripe.pickle")
READ_IDS = 1000
SERVER_CORE = "0"
CLIENT_CORE = "1"


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    connections: int
    threads: int
    timeout: int
    postgres_url: str
    workdir: Path
    log_dir: Path
    idle_wait: int
    idle_threshold: float
    repeat: int


@dataclass(frozen=True)
class Running:
    """A server under test: its process id (for its CPU time) and its log."""

    pid: int
    log_path: Path
    # The PostgreSQL database the server uses, and an admin URL to find its backends.
    pg_database: str | None = None
    pg_admin_url: str | None = None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Servers


@contextlib.contextmanager
def server(
    name: str,
    command: list[str],
    ready_url: str,
    headers: dict[str, str],
    options: Options,
    timeout: float,
    pg_database: str | None = None,
    env: dict[str, str] | None = None,
    cores: str = SERVER_CORE,
) -> Iterator[Running]:
    """Start ``command`` pinned to ``cores``, wait for ``ready_url`` to answer 200, stop it."""
    log_path = options.log_dir / f"{name}.log"
    # Caja's settings come from the command line alone (and ``env``), not the caller's environment.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CAJA_")}, **(env or {})}
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", cores, *command], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(ready_url, headers=headers, timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} was not ready in {timeout}s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield Running(process.pid, log_path, pg_database, options.postgres_url if pg_database else None)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def caja_workers(
    count: int, database_url: str, cores: str, env: dict[str, str], log_path: Path
) -> Iterator[list[subprocess.Popen]]:
    """``count`` ``caja worker`` processes pinned to ``cores``, SIGTERM at the end (exit codes kept).

    Like ``server``, they take their settings from ``env`` alone, not the caller's environment.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAJA_")} | env
    processes: list[subprocess.Popen] = []
    try:
        with log_path.open("ab") as out:
            for _ in range(count):
                command = [str(VENV_BIN / "caja"), "worker", "--database-url", database_url]
                command += ["--log-level", "warning"]
                processes.append(
                    subprocess.Popen(
                        ["taskset", "-c", cores, *command], stdout=out, stderr=subprocess.STDOUT, env=env
                    )
                )
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def caja_serve_command(port: int, database_url: str, *extra: str) -> list[str]:
    """``caja serve`` on a loopback port with the benchmarks' key, logging warnings only."""
    return [
        str(VENV_BIN / "caja"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--api-key",
        CAJA_KEY,
        "--log-level",
        "warning",
        *extra,
    ]


def caja_server(name: str, database_url: str, options: Options, ready_timeout: float = 120) -> Any:
    port = free_port()
    command = caja_serve_command(port, database_url)
    base = f"http://127.0.0.1:{port}"
    pg_database = None if database_url.startswith("sqlite") else make_url(database_url).database
    # Each server's own port for the sandbox mail catcher (several run at once, and 8325, the
    # default, may be someone else's).
    env = {"CAJA_MAIL_CATCHER_PORT": str(free_port())}
    return base, server(name, command, f"{base}/ready", {}, options, ready_timeout, pg_database, env)


def server_log_errors(path: Path) -> tuple[int, dict[str, int]]:
    """Lines a server logged at error level or worse (and tracebacks), and how many of each kind."""
    pattern = re.compile(r'"level":\s*"(error|critical|exception)"|^Traceback|\bERROR\b|\bCRITICAL\b')
    count = 0
    kinds: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not pattern.search(line):
            continue
        count += 1
        try:
            entry = json.loads(line)
            kind = " ".join(str(entry.get(k)) for k in ("event", "exc_type", "path") if entry.get(k))
        except ValueError:
            kind = re.sub(r"^\d{4}-\d\d-\d\d[ T][\d:.,]+\s*", "", line.strip())[:160]
        kinds[kind] = kinds.get(kind, 0) + 1
    return count, kinds


# --------------------------------------------------------------------------------------------
# wrk


def wrk(url: str, mode: str, api: str, key: str, seconds: int, options: Options, ids: Path | None) -> dict:
    """One wrk run pinned to the client core; returns rps, latency percentiles and status counts."""
    command = [
        "taskset",
        "-c",
        CLIENT_CORE,
        "wrk",
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{seconds}s",
        f"--timeout={options.timeout}s",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        mode,
        api,
        key,
    ]
    if ids is not None:
        command.append(str(ids))
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + options.timeout + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}\n{done.stdout}")
    found = re.search(r"^BENCH_JSON (.*)$", done.stdout, re.MULTILINE)
    if not found:
        raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(found.group(1))
    samples = [json.loads(s) for s in re.findall(r"^BENCH_ERROR (.*)$", done.stdout, re.MULTILINE)]
    wrk_rps = re.search(r"^Requests/sec:\s+([\d.]+)", done.stdout, re.MULTILINE)
    statuses = {int(k): v for k, v in raw["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    non_2xx = sum(v for k, v in statuses.items() if not 200 <= k < 300)
    socket_errors = sum(raw["socket_errors"].values())
    seconds_measured = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds_measured, 3),
        "rps": round(raw["requests"] / seconds_measured, 1),
        "ok_rps": round(ok / seconds_measured, 1),
        "wrk_rps": float(wrk_rps.group(1)) if wrk_rps else None,
        "latency_ms": {k: round(v / 1000, 2) for k, v in lat.items()},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "ok": ok,
        "non_2xx": non_2xx,
        "socket_errors": raw["socket_errors"],
        "errors": non_2xx + socket_errors,
        "error_samples": samples,
    }


def _log_run(name: str, mode: str, run: dict) -> None:
    flag = "" if run["errors"] == 0 and run["ok"] > 0 else f"  <-- {run['errors']} ERRORS"
    log(
        f"    {name:24} {mode:6} {run['rps']:>9,.1f} req/s  p50 {run['latency_ms']['p50']:>8.2f} ms  "
        f"p99 {run['latency_ms']['p99']:>8.2f} ms  {run['statuses']}  "
        f"server {run['cpu']['server_pct']:.0f}% of its core, other load {run['cpu']['other_pct']:.0f}%{flag}"
    )


def measure_all(targets: list[Target], mode: str, options: Options) -> None:
    """Warm every target up, then measure them in turn, ``options.repeat`` rounds; keep each one's best.

    Taking turns puts every target through the same stretches of whatever else the machine is doing,
    so ratios between them are fair even on a shared machine; other work can only slow a run down,
    so each target's fastest round is the closest to its own capacity. Errors count over every run,
    warm-ups included.
    """
    idle = wait_for_idle(options)
    warm: dict[str, dict | None] = {t.name: None for t in targets}
    runs: dict[str, list[dict]] = {t.name: [] for t in targets}
    if options.warmup > 0:
        for t in targets:
            warm[t.name] = wrk(t.base, mode, t.api, t.key, options.warmup, options, t.ids_file(mode))
    for round_ in range(options.repeat):
        # Rotate who goes first, so no target always follows the same neighbour.
        for t in targets[round_ % len(targets) :] + targets[: round_ % len(targets)]:
            before = cpu_sample(t.proc)
            run = wrk(t.base, mode, t.api, t.key, options.duration, options, t.ids_file(mode))
            run["cpu"] = cpu_usage(before, cpu_sample(t.proc), t.proc)
            run["cpu"]["busy_before_pct"] = idle
            run["round"] = round_
            runs[t.name].append(run)
            _log_run(t.name, mode, run)
    for t in targets:
        t.result[mode] = _combine(runs[t.name], warm[t.name])


def _combine(runs: list[dict], warm: dict | None) -> dict:
    result = dict(max(runs, key=lambda r: r["rps"]))
    result["runs"] = [
        {
            "rps": r["rps"],
            "p50_ms": r["latency_ms"]["p50"],
            "p99_ms": r["latency_ms"]["p99"],
            "errors": r["errors"],
            "server_pct": r["cpu"]["server_pct"],
            "other_pct": r["cpu"]["other_pct"],
        }
        for r in runs
    ]
    result["warmup"] = (
        None if warm is None else {"requests": warm["requests"], "rps": warm["rps"], "errors": warm["errors"]}
    )
    everything = [*([warm] if warm else []), *runs]
    result["errors_total"] = sum(r["errors"] for r in everything)
    result["statuses_total"] = {}
    for r in everything:
        for status, count in r["statuses"].items():
            result["statuses_total"][status] = result["statuses_total"].get(status, 0) + count
    result["error_samples"] = [s for r in everything for s in r["error_samples"]][:6]
    return result


# --------------------------------------------------------------------------------------------
# CPU accounting: how much of the machine went to something other than the measured processes


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_times() -> dict[str, tuple[float, float]]:
    """Busy and total CPU seconds since boot: "cpu" for the machine, "cpu0", "cpu1"... per core."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu"):
            name, *values = line.split()
            fields = [int(v) for v in values[:8]]
            idle = fields[3] + fields[4]
            times[name] = ((sum(fields) - idle) / CLOCK_TICKS, sum(fields) / CLOCK_TICKS)
    return times


def _machine_busy() -> tuple[float, float]:
    return _cpu_times()["cpu"]


def _process_cpu(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _postgres_cpu(running: Running) -> dict[int, float]:
    """CPU seconds, by pid, of the PostgreSQL processes working for the server under test.

    Its database's backends, and the shared WAL writer, checkpointer and background writer (which
    mostly work for the benchmark's writes); other databases' backends count as other load.
    """
    if not running.pg_database or not running.pg_admin_url:
        return {}
    rows = pg(
        running.pg_admin_url,
        "SELECT pid FROM pg_stat_activity WHERE datname = '"
        + running.pg_database.replace("'", "''")
        + "' OR backend_type IN ('walwriter', 'checkpointer', 'background writer')",
    )[0]
    return {row["pid"]: _process_cpu(row["pid"]) for row in rows}


def cpu_sample(running: Running) -> dict[str, Any]:
    times = _cpu_times()
    busy, total = times["cpu"]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "busy": busy,
        "total": total,
        "server_core_busy": times[f"cpu{SERVER_CORE}"][0],
        "server_core_total": times[f"cpu{SERVER_CORE}"][1],
        "client_core_busy": times[f"cpu{CLIENT_CORE}"][0],
        "client_core_total": times[f"cpu{CLIENT_CORE}"][1],
        "server": _process_cpu(running.pid),
        "wrk": children.ru_utime + children.ru_stime,
        "postgres": _postgres_cpu(running),
    }


def cpu_usage(before: dict[str, Any], after: dict[str, Any], running: Running) -> dict[str, float]:
    """CPU seconds of the server, wrk, PostgreSQL and everything else during one measurement."""
    d = {k: after[k] - before[k] for k in before if k != "postgres"}
    # Per process, so backends that exit during the measurement do not count negative.
    d["postgres"] = sum(cpu - before["postgres"].get(pid, 0.0) for pid, cpu in after["postgres"].items())
    ours = d["server"] + d["wrk"] + d["postgres"]
    other = max(d["busy"] - ours, 0.0)

    def pct(part: float, whole: float) -> float:
        return round(100 * part / whole, 1) if whole else 0.0

    return {
        # How much of its core the server process used (100% = CPU-bound on its core).
        "server_pct": pct(d["server"], d["server_core_total"]),
        "server_core_busy_pct": pct(d["server_core_busy"], d["server_core_total"]),
        "client_core_busy_pct": pct(d["client_core_busy"], d["client_core_total"]),
        "server_s": round(d["server"], 2),
        "wrk_s": round(d["wrk"], 2),
        "postgres_s": round(d["postgres"], 2),
        "other_s": round(other, 2),
        # Share of the whole machine (every core) that went to other processes.
        "other_pct": pct(other, d["total"]),
    }


def wait_for_idle(options: Options) -> float:
    """Wait (a bounded time) until the machine is nearly idle; returns the last busy share seen."""
    deadline = time.monotonic() + options.idle_wait
    warned = False
    while True:
        busy0, total0 = _machine_busy()
        time.sleep(1.0)
        busy1, total1 = _machine_busy()
        pct = 100 * (busy1 - busy0) / max(total1 - total0, 1e-9)
        if pct <= options.idle_threshold or time.monotonic() >= deadline:
            if pct > options.idle_threshold:
                log(f"    machine still {pct:.0f}% busy after {options.idle_wait}s: measuring anyway")
            return round(pct, 1)
        if not warned:
            log(f"    machine {pct:.0f}% busy with other work: waiting up to {options.idle_wait}s")
            warned = True


# --------------------------------------------------------------------------------------------
# Sanity checks: the measured calls must succeed, with the documented bodies


def check_caja(base: str) -> None:
    body = {
        "name": "Cliente Verificacion",
        "email": "verificacion@example.com",
        "phone": "+5215555555555",
        "payment_sources": [{"type": "cash_recurrent"}],
    }
    with httpx.Client(base_url=base, headers=CAJA_HEADERS, timeout=10) as client:
        created = client.post("/customers", json=body)
        if created.status_code != 200:
            raise RuntimeError(f"POST /customers answered {created.status_code}: {created.text}")
        customer = created.json()
        sources = customer["payment_sources"]["data"]
        if customer["object"] != "customer" or len(sources) != 1 or len(sources[0]["reference"]) != 20:
            raise RuntimeError(f"POST /customers answered an unexpected body: {created.text}")
        fetched = client.get(f"/customers/{customer['id']}")
        if fetched.status_code != 200 or fetched.json()["id"] != customer["id"]:
            raise RuntimeError(f"GET /customers/id answered {fetched.status_code}: {fetched.text}")


def check_stripe(base: str) -> None:
    data = {"name": "Cliente Verificacion", "email": "verificacion@example.com", "phone": "+5215555555555"}
    with httpx.Client(base_url=base, headers=STRIPE_HEADERS, timeout=10) as client:
        created = client.post("/v1/customers", data=data)
        if created.status_code != 200 or created.json().get("object") != "customer":
            raise RuntimeError(f"POST /v1/customers answered {created.status_code}: {created.text}")
        fetched = client.get(f"/v1/customers/{created.json()['id']}")
        if fetched.status_code != 200:
            raise RuntimeError(f"GET /v1/customers/id answered {fetched.status_code}: {fetched.text}")


def caja_ids(base: str, limit: int = READ_IDS) -> list[str]:
    """Ids of existing customers, newest first, through the list endpoint."""
    found: list[str] = []
    url: str | None = f"{base}/customers?limit=250"
    with httpx.Client(headers=CAJA_HEADERS, timeout=30) as client:
        while url and len(found) < limit:
            page = client.get(url)
            page.raise_for_status()
            body = page.json()
            found += [c["id"] for c in body["data"]]
            url = body.get("next_page_url") if body.get("has_more") else None
    return found[:limit]


def stripe_ids(base: str, limit: int = READ_IDS) -> list[str]:
    page = httpx.get(f"{base}/v1/customers", params={"limit": limit}, headers=STRIPE_HEADERS, timeout=60)
    page.raise_for_status()
    return [c["id"] for c in page.json()["data"]]


# --------------------------------------------------------------------------------------------
# Databases


def pg_dsn(admin_url: str, database: str | None = None) -> str:
    url = make_url(admin_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def _pg(admin_url: str, *statements: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(admin_url))
    try:
        return [await conn.fetch(s) for s in statements]
    finally:
        await conn.close()


def pg(admin_url: str, *statements: str) -> list[Any]:
    return asyncio.run(_pg(admin_url, *statements))


def pg_exists(admin_url: str, database: str) -> bool:
    rows = pg(admin_url, f"SELECT 1 FROM pg_database WHERE datname = '{database}'")[0]
    return bool(rows)


def pg_drop(admin_url: str, database: str) -> None:
    pg(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_pg_database(admin_url: str, name: str, template: str | None = None) -> Iterator[str]:
    database = f"caja_bench_{name}_{os.getpid()}"
    pg_drop(admin_url, database)
    if template:
        pg(admin_url, f'CREATE DATABASE "{database}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    else:
        pg(admin_url, f'CREATE DATABASE "{database}"')
    try:
        yield pg_dsn(admin_url, database)
    finally:
        pg_drop(admin_url, database)


def count_customers(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn:
            return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])
    return int(pg(database_url, "SELECT count(*) AS n FROM customers")[0][0]["n"])


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Targets: every server runs for the whole run, each pinned to the server core, idle but for its turn


@dataclass
class Target:
    name: str
    api: str  # "caja" or "stripe"
    base: str
    proc: Running
    workdir: Path
    database_url: str | None = None
    # Seeded databases read customers spread over the whole seed; others read their newest.
    preset_ids: list[str] | None = None
    result: dict = field(default_factory=dict)
    _ids: Path | None = None

    @property
    def key(self) -> str:
        return CAJA_KEY if self.api == "caja" else STRIPE_KEY

    def check(self) -> None:
        (check_caja if self.api == "caja" else check_stripe)(self.base)

    def collect_ids(self) -> None:
        ids = self.preset_ids or (caja_ids(self.base) if self.api == "caja" else stripe_ids(self.base))
        if not ids:
            raise RuntimeError(f"{self.name}: no customer ids to read")
        self._ids = self.workdir / f"{self.name}.ids"
        self._ids.write_text("\n".join(ids) + "\n")
        self.result["read_ids"] = len(ids)

    def ids_file(self, mode: str) -> Path | None:
        return self._ids if mode == "read" else None

    def finish(self) -> None:
        """Facts about the server after the measurements, while it still runs."""
        if self.api == "stripe":
            self.result["customers_after"] = len(stripe_ids(self.base, 10**9))
            self.result["version"] = report.package_version("localstripe")
            exists = LOCALSTRIPE_PICKLE.exists()
            self.result["store_pickle_bytes"] = LOCALSTRIPE_PICKLE.stat().st_size if exists else None
        else:
            assert self.database_url
            self.result["customers_after"] = count_customers(self.database_url)
            self.result["database"] = report.redact(self.database_url)
        self.result["server"] = "caja" if self.api == "caja" else "localstripe"
        self.result["server_log"] = str(self.proc.log_path.relative_to(ROOT))


def start_caja(
    stack: contextlib.ExitStack, name: str, url: str, options: Options, preset_ids: list[str] | None = None
) -> Target:
    log(f"== starting {name}  ({report.redact(url)})")
    base, running = caja_server(name, url, options)
    proc = stack.enter_context(running)
    return Target(name, "caja", base, proc, options.workdir, url, preset_ids)


def start_localstripe(stack: contextlib.ExitStack, options: Options) -> Target:
    log("== starting localstripe")
    LOCALSTRIPE_PICKLE.unlink(missing_ok=True)
    stack.callback(LOCALSTRIPE_PICKLE.unlink, missing_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(BENCH / "localstripe_server.py"), "--port", str(port)]
    ready = f"{base}/v1/customers?limit=1"
    proc = stack.enter_context(server("localstripe", command, ready, STRIPE_HEADERS, options, 60))
    return Target("localstripe", "stripe", base, proc, options.workdir)


def sqlite_work_file(
    stack: contextlib.ExitStack, name: str, options: Options, copy_of: Path | None = None
) -> str:
    path = options.workdir / f"{name}.db"
    remove_sqlite(path)
    stack.callback(remove_sqlite, path)
    if copy_of is not None:
        shutil.copyfile(copy_of, path)
        # Flush the copy now: otherwise the kernel writes its gigabyte back during the measurements
        # and the server's first fsyncs of that file wait for all of it.
        with path.open("rb+") as copy:
            os.fsync(copy.fileno())
        subprocess.run(["sync"], check=False, timeout=300)
    return f"sqlite:///{path}"


def run_targets(
    names: list[str], million_backends: list[str], million_rows: int, reseed: bool, options: Options
) -> dict[str, dict]:
    """Seed (if needed), start every server, measure creates then reads, stop and clean up."""
    seeds = {}
    for backend in million_backends:
        if backend == "sqlite":
            seeds[backend] = ensure_sqlite_seed(million_rows, reseed)
        else:
            seeds[backend] = ensure_pg_seed(million_rows, reseed, options)
    with contextlib.ExitStack() as stack:
        targets = []
        for name in names:
            if name == "caja-sqlite":
                url = sqlite_work_file(stack, name, options)
                targets.append(start_caja(stack, name, url, options))
            elif name == "caja-postgresql":
                url = stack.enter_context(fresh_pg_database(options.postgres_url, "empty"))
                targets.append(start_caja(stack, name, url, options))
            else:
                targets.append(start_localstripe(stack, options))
        for backend in million_backends:
            name = f"caja-{backend}-{million_rows}"
            if backend == "sqlite":
                url = sqlite_work_file(stack, name, options, copy_of=sqlite_seed_path(million_rows))
            else:
                template = pg_seed_name(million_rows)
                url = stack.enter_context(fresh_pg_database(options.postgres_url, "million", template))
            target = start_caja(stack, name, url, options, seeded_read_ids(million_rows))
            target.result["seed"] = seeds[backend]
            targets.append(target)
        for t in targets:
            t.check()
        log(f"== creates: {options.repeat} rounds of {options.duration} s, after {options.warmup} s warm-ups")
        measure_all(targets, "create", options)
        for t in targets:
            t.collect_ids()
        log(f"== reads: {options.repeat} rounds of {options.duration} s, after {options.warmup} s warm-ups")
        measure_all(targets, "read", options)
        for t in targets:
            t.finish()
    for t in targets:
        t.result["server_log_errors"], t.result["server_log_error_kinds"] = server_log_errors(t.proc.log_path)
    return {t.name: t.result for t in targets}


def seeded_read_ids(rows: int) -> list[str]:
    """Customers spread over the whole seeded range (old ones, cold in any cache but the OS's)."""
    picks = random.Random(42).sample(range(rows), min(READ_IDS, rows))
    from seed import customer_id

    return [customer_id(i) for i in picks]


def seed(database_url: str, rows: int) -> float:
    # Imported late: with --caja-ref, ``caja`` must come from that revision's sources.
    from seed import seed as seed_rows

    return seed_rows(database_url, rows)


def use_caja_ref(ref: str) -> str:
    """Run Caja from a committed revision instead of the working tree; returns its commit id.

    The revision's ``src/`` is exported (``git archive``) to bench/results/src/COMMIT and put first
    on PYTHONPATH, for the servers, ``caja migrate`` and the seeding alike: another engineer's
    uncommitted edits then cannot change (or break) what is measured.
    """
    commit, src = export_caja_src(ref)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    sys.path.insert(0, src)
    return commit


def export_caja_src(ref: str) -> tuple[str, str]:
    """A committed revision's ``src/``, exported once to bench/results/src/COMMIT: (commit, path)."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    if not commit:
        raise SystemExit(f"--caja-ref {ref}: no such revision")
    root = RESULTS / "src" / commit[:12]
    if not (root / "src" / "caja" / "__init__.py").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    return commit, str(root / "src")


def seed_meta(rows: int, took: float) -> dict:
    return {"rows": rows, "seed_seconds": round(took, 1), "at": now_iso(), "revision": head_revision()}


def head_revision() -> str | None:
    from caja.store.migrate import head_revision

    return head_revision()


def seed_is_current(meta_path: Path) -> bool:
    """A seed made at an older schema revision is made again, so it has today's shape."""
    revision = json.loads(meta_path.read_text()).get("revision")
    if revision != head_revision():
        log(f"== the seed in {meta_path.name} is at schema {revision}, not {head_revision()}: seeding again")
        return False
    return True


def sqlite_seed_path(rows: int) -> Path:
    return RESULTS / "seed" / f"sqlite-{rows}.db"


def ensure_sqlite_seed(rows: int, reseed: bool) -> dict:
    path = sqlite_seed_path(rows)
    meta_path = path.with_suffix(".json")
    cached = not reseed and path.exists() and meta_path.exists() and seed_is_current(meta_path)
    if not cached:
        remove_sqlite(path)
        meta_path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        remove_sqlite(partial)
        log(f"== seeding {rows:,} customers into {path.relative_to(ROOT)}")
        took = seed(f"sqlite:///{partial}", rows)
        partial.rename(path)
        meta_path.write_text(json.dumps(seed_meta(rows, took)))
    meta = json.loads(meta_path.read_text())
    meta["bytes"] = path.stat().st_size
    meta["cached"] = cached
    return meta


def pg_seed_name(rows: int) -> str:
    return f"caja_bench_seed_{rows}"


def ensure_pg_seed(rows: int, reseed: bool, options: Options) -> dict:
    name = pg_seed_name(rows)
    marker = RESULTS / "seed" / f"{name}.json"
    cached = not reseed and pg_exists(options.postgres_url, name) and marker.exists()
    cached = cached and seed_is_current(marker)
    if not cached:
        pg_drop(options.postgres_url, name)
        marker.unlink(missing_ok=True)
        marker.parent.mkdir(parents=True, exist_ok=True)
        log(f"== seeding {rows:,} customers into PostgreSQL database {name}")
        pg(options.postgres_url, f'CREATE DATABASE "{name}"')
        try:
            took = seed(pg_dsn(options.postgres_url, name), rows)
        except BaseException:
            pg_drop(options.postgres_url, name)
            raise
        marker.write_text(json.dumps(seed_meta(rows, took)))
    meta = json.loads(marker.read_text())
    size = pg(options.postgres_url, f"SELECT pg_database_size('{name}') AS n")[0][0]["n"]
    meta.update(bytes=int(size), cached=cached, template=name)
    return meta


# --------------------------------------------------------------------------------------------
# The run


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def machine(options: Options) -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk_version = (
        subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        if shutil.which("wrk")
        else subprocess.CompletedProcess([], 0, "not installed", "")
    )
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("[")[0].strip(),
        "filesystem": report.filesystem(options.workdir),
        "fsync_100kb_ms": report.fsync_latency(options.workdir),
    }
    with contextlib.suppress(Exception):
        settings = pg(
            options.postgres_url,
            "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name IN "
            "('server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', "
            "'shared_buffers', 'max_connections')",
        )[0]
        info["postgresql"] = {r["name"]: r["setting"] for r in settings}
    return info


def ratios(results: dict, million_rows: int) -> dict:
    out: dict[str, Any] = {}
    peer = results.get("localstripe")
    for backend in ("sqlite", "postgresql"):
        caja = results.get(f"caja-{backend}")
        if caja and peer:
            out[f"create_vs_localstripe_{backend}"] = round(caja["create"]["rps"] / peer["create"]["rps"], 1)
            out[f"read_vs_localstripe_{backend}"] = round(caja["read"]["rps"] / peer["read"]["rps"], 2)
        big = results.get(f"caja-{backend}-{million_rows}")
        if caja and big:
            change = big["create"]["rps"] / caja["create"]["rps"] - 1
            out[f"million_create_change_{backend}"] = round(change, 3)
            out[f"million_read_change_{backend}"] = round(big["read"]["rps"] / caja["read"]["rps"] - 1, 3)
    if "caja-sqlite" in results:
        out["caja_sqlite_creates_per_second"] = results["caja-sqlite"]["create"]["rps"]
    return out


def write_docs(page: str) -> None:
    """Write docs/performance.md, keeping its webhook deliveries and recurrent cash sections."""
    import cash

    old = DOCS.read_text() if DOCS.exists() else None
    DOCS.write_text(cash.keep_cash_section(report.keep_delivery_section(page, old), old))


def main() -> None:
    if "--only" in sys.argv[1:]:
        # ``--only delivery [its options]``: the webhook delivery benchmark (bench/delivery.py).
        at = sys.argv.index("--only")
        only = sys.argv[at + 1] if at + 1 < len(sys.argv) else ""
        rest = sys.argv[1:at] + sys.argv[at + 2 :]
        if only == "delivery":
            import delivery

            delivery.main(rest)
            return
        if only == "cash":
            # ``--only cash [its options]``: the recurrent cash benchmark (bench/cash.py).
            import cash

            cash.main(rest)
            return
        if only != "customers":
            raise SystemExit("--only: delivery, cash or customers")
        sys.argv = [sys.argv[0], *rest]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, help="seconds per measurement (default 10; --quick 5)")
    parser.add_argument(
        "--repeat", type=int, help="rounds of measurements, each server's best kept (default 3; --quick 1)"
    )
    parser.add_argument("--warmup", type=int, help="seconds of warm-up before each (default 3; --quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1, on its one core)")
    parser.add_argument("--timeout", type=int, default=30, help="wrk per-request timeout, seconds")
    parser.add_argument("--quick", action="store_true", help="5 s measurements and no 1M stage")
    parser.add_argument(
        "--idle-wait",
        type=int,
        default=20,
        help="before each call's measurements, wait up to this many seconds for other work to stop (20)",
    )
    parser.add_argument(
        "--idle-threshold", type=float, default=15.0, help="%% of the machine counted as idle (15)"
    )
    parser.add_argument(
        "--targets",
        default="caja-sqlite,caja-postgresql,localstripe",
        help="comma-separated: caja-sqlite, caja-postgresql, localstripe",
    )
    parser.add_argument(
        "--million",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the seeded-database stage (default: on, off with --quick)",
    )
    parser.add_argument("--million-rows", type=int, default=1_000_000, help="customers to seed (1,000,000)")
    parser.add_argument(
        "--million-backends", default="sqlite,postgresql", help="seeded stage backends (sqlite,postgresql)"
    )
    parser.add_argument("--reseed", action="store_true", help="seed again even if a cached seed exists")
    parser.add_argument(
        "--seed-only", action="store_true", help="only make (or check) the seeded databases, then exit"
    )
    parser.add_argument(
        "--drop-seeds", action="store_true", help="delete the cached seeded databases after the run"
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_ADMIN_URL,
        help="an admin connection; runs create and drop their own databases (env CAJA_BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--caja-ref",
        help="benchmark Caja as committed at this git revision (e.g. HEAD) instead of the working tree",
    )
    parser.add_argument("--write-docs", action="store_true", help=f"render {DOCS.relative_to(ROOT)}")
    parser.add_argument("--from-json", type=Path, help="render a previous run's JSON instead of running")
    args = parser.parse_args()

    if args.from_json:
        data = json.loads(args.from_json.read_text())
        print(report.table(data))
        if args.write_docs:
            write_docs(report.markdown(data, args.from_json))
            log(f"wrote {DOCS.relative_to(ROOT)}")
        return

    caja_commit = use_caja_ref(args.caja_ref) if args.caja_ref else None
    duration = args.duration or (5 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    million = args.million if args.million is not None else not args.quick
    repeat = args.repeat or (1 if args.quick else 3)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / "work"
    log_dir = RESULTS / "logs" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    options = Options(
        idle_wait=args.idle_wait,
        idle_threshold=args.idle_threshold,
        repeat=repeat,
        duration=duration,
        warmup=warmup,
        connections=args.connections,
        threads=args.threads,
        timeout=args.timeout,
        postgres_url=args.postgres_url,
        workdir=workdir,
        log_dir=log_dir,
    )
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    million_backends = [b.strip() for b in args.million_backends.split(",") if b.strip()] if million else []
    unknown = set(targets) - {"caja-sqlite", "caja-postgresql", "localstripe"}
    unknown |= set(million_backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}")

    if args.seed_only:
        for backend in [b.strip() for b in args.million_backends.split(",") if b.strip()]:
            if backend == "sqlite":
                meta = ensure_sqlite_seed(args.million_rows, args.reseed)
            else:
                meta = ensure_pg_seed(args.million_rows, args.reseed, options)
            log(f"{backend}: {json.dumps(meta)}")
        return

    started = time.monotonic()
    data: dict[str, Any] = {
        "started_at": now_iso(),
        "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
        "git": {
            "commit": caja_commit[:7] if caja_commit else git("rev-parse", "--short", "HEAD"),
            # Caja ran from the working tree, with these files edited since the commit.
            "uncommitted_src_files": 0
            if caja_commit
            else len(git("status", "--porcelain", "src").splitlines()),
            "caja_ref": args.caja_ref,
        },
        "settings": {
            "duration_s": duration,
            "warmup_s": warmup,
            "connections": args.connections,
            "wrk_threads": args.threads,
            "wrk_timeout_s": args.timeout,
            "repeat": repeat,
            "server_core": SERVER_CORE,
            "client_core": CLIENT_CORE,
            "read_ids": READ_IDS,
            "million_rows": args.million_rows if million else None,
            "idle_wait_s": args.idle_wait,
            "idle_threshold_pct": args.idle_threshold,
        },
        "machine": machine(options),
        "results": {},
    }
    try:
        data["results"] = run_targets(targets, million_backends, args.million_rows, args.reseed, options)
    finally:
        if args.drop_seeds:
            remove_sqlite(sqlite_seed_path(args.million_rows))
            sqlite_seed_path(args.million_rows).with_suffix(".json").unlink(missing_ok=True)
            with contextlib.suppress(Exception):
                pg_drop(args.postgres_url, pg_seed_name(args.million_rows))
            (RESULTS / "seed" / f"{pg_seed_name(args.million_rows)}.json").unlink(missing_ok=True)
    data["ratios"] = ratios(data["results"], args.million_rows)
    data["elapsed_s"] = round(time.monotonic() - started, 1)

    out = RESULTS / f"run-{stamp}.json"
    out.write_text(json.dumps(data, indent=2) + "\n")
    shutil.copyfile(out, RESULTS / "latest.json")
    print(report.table(data))
    log(f"results: {out.relative_to(ROOT)}")
    if args.write_docs:
        write_docs(report.markdown(data, out))
        log(f"wrote {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
