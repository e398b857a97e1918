"""Turn a benchmark run's JSON into a console table and into docs/performance.md."""

from __future__ import annotations

import os
import subprocess
import time
from importlib import metadata
from pathlib import Path

from sqlalchemy.engine import make_url

TARGET_CREATE_RATIO = 20.0
TARGET_READ_RATIO = 1.0
TARGET_SQLITE_CREATES = 2000.0
TARGET_MILLION_DROP = 0.20

LABELS = {
    "caja-sqlite": "Caja, SQLite",
    "caja-postgresql": "Caja, PostgreSQL",
    "localstripe": "localstripe (peer)",
}


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def filesystem(path: Path) -> str:
    done = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    return lines[1].split()[1] if len(lines) > 1 else "unknown"


# The disk's own sync latency, as a database commit meets it: this many syncs of this much data,
# this far apart (a paced payment's batch alone writes ~100 KB of WAL on SQLite).
FSYNC_PROBES = 200
FSYNC_PROBE_BYTES = 100 * 1024
FSYNC_PROBE_GAP_S = 0.01


def fsync_latency(directory: Path) -> dict[str, float]:
    """p50/p90/p99/max milliseconds of ``fdatasync`` after writing 100 KB, in ``directory``.

    A durable write is answered only once its data is on disk, so on a disk whose syncs take
    milliseconds at the tail, no database's commit (nor Caja's own time per payment) does better.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fsync-probe.bin"
    block = os.urandom(FSYNC_PROBE_BYTES)
    took: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for i in range(FSYNC_PROBES):
            os.pwrite(fd, block, (i % 8) * FSYNC_PROBE_BYTES)
            started = time.perf_counter()
            os.fdatasync(fd)
            took.append((time.perf_counter() - started) * 1000)
            time.sleep(FSYNC_PROBE_GAP_S)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    took.sort()
    at = lambda share: round(took[min(int(len(took) * share), len(took) - 1)], 3)  # noqa: E731
    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(took[-1], 3)}


def fsync_sentence(machine: dict) -> str:
    """How the disk synced at the run's start, for the Method notes ("" for runs that did not measure it)."""
    sync = machine.get("fsync_100kb_ms")
    if not sync:
        return ""
    return (
        f"At the run's start the disk synced 100 KB ({FSYNC_PROBES} `fdatasync`s "
        f"{FSYNC_PROBE_GAP_S * 1000:.0f} ms apart) in p50 {sync['p50']:.2f}, p90 {sync['p90']:.2f}, p99 "
        f"{sync['p99']:.2f} ms (max {sync['max']:.2f}): a durable commit waits for one of these."
    )


def label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    backend, _, rows = key.removeprefix("caja-").rpartition("-")
    name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(backend, backend)
    return f"Caja, {name}, {int(rows):,} customers"


def phase_errors(phase: dict) -> int:
    """Failed requests over every run of a phase, warm-up included."""
    if "errors_total" in phase:
        return int(phase["errors_total"])
    return int(phase["errors"] + (phase.get("warmup") or {}).get("errors", 0))


def _errors(result: dict) -> str:
    return f"{phase_errors(result['create'])} / {phase_errors(result['read'])}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def checks(data: dict) -> list[tuple[str, str, str, str, bool]]:
    """(what, measured, measured per server CPU-second, target, met) for every target the run can judge.

    The verdict goes by the measured (wall-clock) figure; the CPU-normalised one shows how much
    other load on the machine may have moved it.
    """
    res = data["results"]
    peer = res.get("localstripe")
    rows = []
    for backend, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        caja = res.get(f"caja-{backend}")
        if not (caja and peer):
            continue
        for phase, noun, target, digits in (
            ("create", "creates", TARGET_CREATE_RATIO, 1),
            ("read", "reads", TARGET_READ_RATIO, 2),
        ):
            value = caja[phase]["rps"] / peer[phase]["rps"]
            per_cpu = per_cpu_second(caja[phase]) / per_cpu_second(peer[phase])
            # A ratio that rounds to its target shows one more digit, so a FAIL never reads "20.0× ≥ 20×".
            if value < target and round(value, digits) >= target:
                digits += 1
            rows.append(
                (
                    f"Caja {name} {noun}/s ÷ localstripe {noun}/s",
                    f"{value:,.{digits}f}×",
                    f"{per_cpu:,.{digits}f}×",
                    f"≥ {target:g}×",
                    value >= target,
                )
            )
    if "caja-sqlite" in res:
        create = res["caja-sqlite"]["create"]
        rows.append(
            (
                "Caja SQLite creates/s (absolute)",
                f"{create['rps']:,.0f}",
                f"{per_cpu_second(create):,.0f}",
                f"≥ {TARGET_SQLITE_CREATES:,.0f}",
                create["rps"] >= TARGET_SQLITE_CREATES,
            )
        )
    million = data["settings"].get("million_rows")
    for backend, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        empty, big = res.get(f"caja-{backend}"), res.get(f"caja-{backend}-{million}")
        if not (empty and big):
            continue
        value = big["create"]["rps"] / empty["create"]["rps"] - 1
        per_cpu = per_cpu_second(big["create"]) / per_cpu_second(empty["create"]) - 1
        rows.append(
            (
                f"Caja {name} creates/s, {million:,} customers vs empty",
                f"{value:+.1%}",
                f"{per_cpu:+.1%}",
                f"drop ≤ {TARGET_MILLION_DROP:.0%}",
                value >= -TARGET_MILLION_DROP,
            )
        )
    return rows


def total_errors(data: dict) -> int:
    return sum(phase_errors(r[phase]) for r in data["results"].values() for phase in ("create", "read"))


def table(data: dict) -> str:
    header = (
        f"{'':40} {'create/s':>10} {'p50 ms':>8} {'p99 ms':>8}   {'read/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8}   {'errors c/r':>10}"
    )
    lines = ["", header, "-" * len(header)]
    for key, result in data["results"].items():
        c, r = result["create"], result["read"]
        cl, rl = c["latency_ms"], r["latency_ms"]
        lines.append(
            f"{label(key):40} {c['rps']:>10,.1f} {cl['p50']:>8.2f} {cl['p99']:>8.2f}   "
            f"{r['rps']:>10,.1f} {rl['p50']:>8.2f} {rl['p99']:>8.2f}   {_errors(result):>10}"
        )
    lines += ["", "CPU during each measurement (server: share of its core; other: other processes' share"]
    lines += ["of the whole machine, e.g. other people's work on a shared machine):"]
    for key, result in data["results"].items():
        parts = []
        for phase in ("create", "read"):
            cpu = result[phase].get("cpu")
            if cpu:
                on_pg = result.get("database", "").startswith("postgres")
                pg = f", postgres {cpu['postgres_s']:.1f} s" if on_pg else ""
                server_pct = cpu.get("server_pct", float("nan"))
                parts.append(
                    f"{phase}: server {server_pct:.0f}%, other {cpu['other_pct']:.0f}%{pg}, "
                    f"{per_cpu_second(result[phase]):,.0f} req/CPU-s"
                )
        lines.append(f"  {label(key):40} {'; '.join(parts)}")
    lines += ["", f"Targets:{'':52} {'measured':>10}  {'per CPU-s':>10}"]
    for what, measured, per_cpu, target, ok in checks(data):
        lines.append(f"  {what:58} {measured:>10}  {per_cpu:>10}  (target {target})  {_verdict(ok)}")
    errors = total_errors(data)
    lines.append("")
    if errors:
        lines.append(f"ERRORS: {errors} failed requests (non-2xx or socket errors), samples:")
        for key, result in data["results"].items():
            for phase in ("create", "read"):
                for sample in result[phase]["error_samples"][:3]:
                    lines.append(f"  {key} {phase}: {sample[:300]}")
    else:
        lines.append("Every measured request answered 2xx (no socket errors, no timeouts).")
    for key, result in data["results"].items():
        if result.get("server_log_errors"):
            lines.append(f"{key}: {result['server_log_errors']} error lines in {result['server_log']}:")
            for kind, n in (result.get("server_log_error_kinds") or {}).items():
                lines.append(f"  {n} × {kind}")
    lines.append("")
    return "\n".join(lines)


def _md_figures(data: dict) -> list[str]:
    out = [
        "| Server | Creates/s | p50 ms | p99 ms | Reads/s | p50 ms | p99 ms | Errors (create / read) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, result in data["results"].items():
        c, r = result["create"], result["read"]
        cl, rl = c["latency_ms"], r["latency_ms"]
        out.append(
            f"| {label(key)} | {c['rps']:,.0f} | {cl['p50']:.1f} | {cl['p99']:.1f} "
            f"| {r['rps']:,.0f} | {rl['p50']:.1f} | {rl['p99']:.1f} | {_errors(result)} |"
        )
    return out


def per_cpu_second(phase: dict) -> float:
    """Requests per CPU-second of the server process: throughput with the stolen time taken out."""
    cpu = phase.get("cpu") or {}
    return phase["requests"] / cpu["server_s"] if cpu.get("server_s") else float("nan")


def _md_cpu(data: dict) -> list[str]:
    out = [
        "| Server | Create: server CPU | other load | req/CPU-s "
        "| Read: server CPU | other load | req/CPU-s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, result in data["results"].items():
        c, r = result["create"].get("cpu"), result["read"].get("cpu")
        if c and r:
            out.append(
                f"| {label(key)} | {c.get('server_pct', float('nan')):.0f}% | {c['other_pct']:.0f}% "
                f"| {per_cpu_second(result['create']):,.0f} "
                f"| {r.get('server_pct', float('nan')):.0f}% | {r['other_pct']:.0f}% "
                f"| {per_cpu_second(result['read']):,.0f} |"
            )
    return out


def other_loads(data: dict) -> list[float]:
    return [
        run["other_pct"]
        for result in data["results"].values()
        for phase in ("create", "read")
        for run in result[phase].get("runs", [])
        if "other_pct" in run
    ]


def _md_contention(data: dict) -> list[str]:
    loads = sorted(other_loads(data))
    if not loads or loads[len(loads) // 2] < 20:
        return []
    median = loads[len(loads) // 2]
    return [
        f"> **This run shared the machine with other work**: during the measurements, other processes "
        f"used {loads[0]:.0f}–{loads[-1]:.0f}% of the machine (median {median:.0f}%), so the servers "
        "got only part of their core and every absolute figure here is pessimistic and noisy. Ratios "
        "between servers are fairer (the servers take turns through the same load), and the "
        "*per server CPU-second* column shows the figures with the stolen time taken out. Rerun on a "
        "quiet machine for figures to quote.",
        "",
    ]


def _md_server_logs(data: dict) -> list[str]:
    out = []
    for key, result in data["results"].items():
        if result.get("server_log_errors"):
            kinds = "; ".join(
                f"{n} × `{kind}`" for kind, n in (result.get("server_log_error_kinds") or {}).items()
            )
            out.append(
                f"- {label(key)}: {result['server_log_errors']} error-level log lines"
                + (f" ({kinds})" if kinds else "")
            )
    if out:
        out = ["The servers' logs (in `bench/results/logs/`) had error-level lines:", "", *out, ""]
        if any("ClientDisconnect" in line for line in out):
            out += [
                "`ClientDisconnect`: requests still in flight when wrk stopped at the end of a "
                "measurement and closed its connections. They are not failed benchmark requests, but "
                "Caja treats a client going away as an unhandled error (a 500 and a logged traceback) "
                "rather than dropping the request quietly.",
                "",
            ]
    return out


def _md_checks(data: dict) -> list[str]:
    out = [
        "| Figure | Measured | Per server CPU-second | Target | |",
        "|---|---:|---:|---:|---|",
    ]
    for what, measured, per_cpu, target, ok in checks(data):
        out.append(f"| {what} | {measured} | {per_cpu} | {target} | {_verdict(ok)} |")
    return out


def markdown(data: dict, source: Path) -> str:
    s = data["settings"]
    m = data["machine"]
    res = data["results"]
    pgs = m.get("postgresql", {})
    million = s.get("million_rows")
    try:
        source_name = str(source.resolve().relative_to(Path(__file__).resolve().parent.parent))
    except ValueError:
        source_name = str(source)
    lines = [
        "# Performance",
        "",
        f"<!-- Generated by `python bench/run.py --write-docs` from {source_name}; rerun it rather than",
        "     editing by hand. -->",
        "",
        f"Figures from one run of the benchmark suite in `bench/` on {data['started_at'][:10]} "
        f"(Caja at commit `{data['git']['commit']}`"
        + (
            f", with {data['git']['uncommitted_src_files']} uncommitted files under `src/`"
            if data["git"].get("uncommitted_src_files")
            else ""
        )
        + (", run with `--caja-ref`" if data["git"].get("caja_ref") else "")
        + "). Absolute numbers depend on the machine; the figures that matter are the ratios against "
        "the peer, [localstripe](https://github.com/adrienverge/localstripe), measured in the same run "
        "on the same machine with the same load generator.",
        "",
        *_md_contention(data),
        "## Against the targets",
        "",
        *_md_checks(data),
        "",
        "## Figures",
        "",
        f"Requests per second and latency percentiles of the best of {s.get('repeat', 1)} measurements "
        f"of {s['duration_s']} s each, {s['connections']} connections. Creates are `POST /customers` "
        "with one `cash_recurrent` payment source (localstripe: form-encoded `POST /v1/customers` "
        "with name, email and phone); reads are `GET /customers/{id}` rotating over existing "
        "customers (localstripe: `GET /v1/customers/{id}`).",
        "",
        *_md_figures(data),
        "",
    ]
    errors = total_errors(data)
    if errors:
        lines += [
            f"**{errors} requests failed** (non-2xx answers or socket errors); samples:",
            "",
        ]
        for key, result in res.items():
            for phase in ("create", "read"):
                for sample in result[phase]["error_samples"][:3]:
                    lines.append(f"- {label(key)}, {phase}: `{sample[:200]}`")
        lines.append("")
    else:
        lines += [
            "Every request of every measurement and warm-up answered 2xx: wrk's Lua `response()` "
            "counts each status, and the suite also checks one create and one read by hand before "
            "loading each server.",
            "",
        ]
    lines += _md_server_logs(data)
    for key, result in res.items():
        if key == "localstripe":
            size = result.get("store_pickle_bytes")
            lines += [
                f"localstripe held {result['customers_after']:,} customers at the end"
                + (f" (its pickled store: {size / 2**20:,.1f} MiB, rewritten on every write)" if size else "")
                + ". Its create rate falls as its store grows, since each write pickles the whole store: "
                "its rounds gave "
                + ", ".join(f"{r['rps']:,.0f}" for r in result["create"].get("runs", []))
                + " creates/s in turn, after a warm-up from an empty store, and the best is reported.",
                "",
            ]
    lines += [
        "CPU during each measurement: *server CPU* is the share of its core the server process used "
        "(near 100% means it was CPU-bound); *other load* is the share of the whole machine used by "
        "processes other than the server, wrk and (for PostgreSQL targets) the PostgreSQL backends of "
        "the benchmark's database and its WAL writer, checkpointer and background writer. Before each "
        f"measurement the suite waits up to {s.get('idle_wait_s', '?')} s for the machine to be under "
        f"{s.get('idle_threshold_pct', '?')}% busy; a high *other load* means the figure is pessimistic. "
        "*req/CPU-s* is requests per CPU-second of the server process, the throughput a whole core "
        "would give a CPU-bound server; it ignores time spent waiting (fsync, PostgreSQL) and is given "
        "only to show how much other load moved the figures.",
        "",
        *_md_cpu(data),
        "",
    ]
    if million:
        seeded = [k for k in res if k.endswith(f"-{million}")]
        lines += [
            f"## Databases with {million:,} customers",
            "",
            f"Caja's create and read rates on a database seeded with {million:,} customers (each with one "
            "`cash_recurrent` payment source and its two events), against the empty database of the same "
            "run.",
            "",
            "| Backend | Creates/s empty | Creates/s seeded | Change | Reads/s empty | Reads/s seeded "
            "| Change | Seeded size | Seeding took |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key in seeded:
            backend = key.removeprefix("caja-").rpartition("-")[0]
            empty = res.get(f"caja-{backend}")
            big = res[key]
            seed = big.get("seed", {})
            if not empty:
                continue
            lines.append(
                f"| {label('caja-' + backend).removeprefix('Caja, ')} | {empty['create']['rps']:,.0f} "
                f"| {big['create']['rps']:,.0f} | {big['create']['rps'] / empty['create']['rps'] - 1:+.1%} "
                f"| {empty['read']['rps']:,.0f} | {big['read']['rps']:,.0f} "
                f"| {big['read']['rps'] / empty['read']['rps'] - 1:+.1%} "
                f"| {seed.get('bytes', 0) / 2**30:.2f} GiB | {seed.get('seed_seconds', 0):,.0f} s |"
            )
        lines += [
            "",
            "The seeded reads go to 1,000 customers drawn at random from the whole seeded range; the "
            "empty-database reads go to the 1,000 newest customers of its create phase.",
            "",
        ]
    lines += [
        "## Method",
        "",
        f"- **Machine**: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GiB RAM, Linux {m['kernel']}, "
        f"{m['filesystem']} on a virtual disk; Python {m['python']}, SQLite {m['sqlite']}, "
        f"PostgreSQL {pgs.get('server_version', '?')}, {m['wrk']}. {fsync_sentence(m)}".rstrip(),
        f"- **Pinning**: every server runs with `taskset -c {s['server_core']}` (one uvicorn "
        "process for each Caja, the aiohttp process for localstripe) and wrk with "
        f"`taskset -c {s['client_core']}`. All the servers run for the whole run and are loaded one at "
        "a time; the others sit idle on their core meanwhile. "
        "PostgreSQL's own processes are not pinned: they share both cores with the server and wrk, so "
        "Caja-on-PostgreSQL has a little more than one core of database-plus-server time.",
        f"- **Load**: `wrk -t{s['wrk_threads']} -c{s['connections']} -d{s['duration_s']}s "
        f"--timeout {s['wrk_timeout_s']}s --latency -s bench/wrk/customers.lua`, after a "
        f"{s['warmup_s']} s warm-up run of the same script whose figures are discarded. The servers are "
        f"measured in turns, {s.get('repeat', 1)} rounds (the order rotates each round), creates first, "
        "then reads, so every server meets the same stretches of whatever else the machine is doing; "
        "each server's fastest round is reported (other work can only slow a run down) and every "
        "round is kept in the JSON. Requests/s is "
        "requests completed over the measured duration (wrk's own summary); latencies are wrk's "
        "percentiles for those requests (closed loop: each connection sends its next request when the "
        "previous one answers). The Lua script builds a unique name, email and phone for each create, "
        "and rotates reads over 1,000 ids.",
        "- **Caja**: `caja serve --host 127.0.0.1 --port PORT --database-url URL --api-key "
        "key_benchbenchbench1 --log-level warning`, which migrates the schema and starts one uvicorn "
        "worker (uvloop, httptools, no access log). Each run uses new SQLite files and new PostgreSQL "
        "databases, deleted afterwards.",
        "- **localstripe**: `bench/localstripe_server.py` serves `localstripe.server.app` on 127.0.0.1 "
        "(its own command listens on every interface) with an empty store and no access log; "
        "`/tmp/localstripe.pickle` is deleted before and after. localstripe keeps everything in memory and "
        "pickles its whole store to that file on every write, by design; it is measured as it is.",
        "- **Durable**: a create is answered only after it is on disk. SQLite runs in WAL mode with "
        "`synchronous=FULL` (every commit fsyncs the WAL); PostgreSQL runs with its defaults: "
        f"`fsync={pgs.get('fsync', '?')}`, `synchronous_commit={pgs.get('synchronous_commit', '?')}`, "
        f"`full_page_writes={pgs.get('full_page_writes', '?')}`, `wal_sync_method="
        f"{pgs.get('wal_sync_method', '?')}`. localstripe makes no such promise: it writes its pickle "
        "without fsync.",
    ]
    if million:
        lines.append(
            f"- **Seeding** ({million:,} customers): `bench/seed.py` migrates a fresh database with "
            "`caja migrate`, inserts a sandbox account, then writes, in 50,000-customer transactions, one "
            "`customers` row, one `payment_sources` row (a unique 20-digit Luhn-checked recurrent cash "
            "reference) and two `events` rows per customer, with the column lists of `caja.store.tables`: "
            "the sqlite3 driver's `executemany` for SQLite, binary `COPY` "
            "(`asyncpg.copy_records_to_table`) followed by `VACUUM ANALYZE` for PostgreSQL. Ids and "
            "references are unique by construction (affine bijections of the row number over each id "
            "space) and reach the indexes in random order, as random ids do. Event payloads are compact "
            "stand-ins. The seeded database is cached (`bench/results/seed/` and a PostgreSQL template "
            "database) and each run works on a copy."
        )
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        ". .venv/bin/activate",
        "python bench/run.py --caja-ref HEAD --write-docs   # what made this page (~7 min, plus ~4 min",
        "                                                   # of seeding the first time)",
        "python bench/run.py                 # the working tree instead of a commit, no docs",
        "python bench/run.py --quick         # one 5 s round per server, no 1M stage",
        "python bench/run.py --seed-only     # just make the seeded databases",
        "python bench/run.py --from-json bench/results/latest.json --write-docs   # re-render only",
        "```",
        "",
        "Options: `--duration`, `--warmup`, `--connections`, `--targets`, `--million-rows`, "
        "`--million-backends`, `--reseed`, `--seed-only`, `--drop-seeds`, `--repeat`, `--caja-ref REV` "
        "(run Caja as committed at REV rather than the working tree), `--postgres-url` "
        "(default `postgresql://postgres@127.0.0.1:5432/postgres`). It needs `wrk`, `taskset`, two cores "
        "and `pip install -e '.[bench]'` (localstripe). Results land in `bench/results/` (not in git), "
        "with each server's log.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Webhook deliveries (bench/delivery.py): a section of docs/performance.md of its own, in a
# marked block that the customers run (bench/run.py --write-docs) keeps as it is.

TARGET_DELIVERIES_PER_S = 1000.0
TARGET_STEADY_P99_MS = 100.0
DELIVERY_BEGIN = "<!-- webhook deliveries: generated by `python bench/delivery.py --write-docs`; begin -->"
DELIVERY_END = "<!-- webhook deliveries: end -->"

DELIVERY_LABELS = {
    "sqlite": "SQLite, dispatcher in `caja serve`",
    "postgresql-1": "PostgreSQL, 1 `caja worker`",
    "postgresql-3": "PostgreSQL, 3 `caja worker`s",
}


def delivery_label(key: str) -> str:
    return DELIVERY_LABELS.get(key, key).replace("`", "")


def _md_delivery_label(key: str) -> str:
    return DELIVERY_LABELS.get(key, key)


def delivery_block(document: str) -> str | None:
    """The marked webhook deliveries block of a rendered page, markers included, if it has one."""
    start = document.find(DELIVERY_BEGIN)
    end = document.find(DELIVERY_END)
    if start < 0 or end < start:
        return None
    return document[start : end + len(DELIVERY_END)]


def with_delivery_section(document: str, section: str) -> str:
    """``document`` with its webhook deliveries block replaced by ``section`` (appended if none)."""
    block = f"{DELIVERY_BEGIN}\n\n{section.strip()}\n\n{DELIVERY_END}"
    old = delivery_block(document)
    if old is not None:
        return document.replace(old, block)
    return document.rstrip("\n") + "\n\n" + block + "\n"


def keep_delivery_section(new_document: str, old_document: str | None) -> str:
    """A freshly rendered customers page, with the webhook deliveries block of the old page kept."""
    old = delivery_block(old_document or "")
    if old is None:
        return new_document
    return new_document.rstrip("\n") + "\n\n" + old + "\n"


def peer_rate(data: dict) -> float | None:
    best = (data.get("peer") or {}).get("best")
    return float(best["deliveries_per_s"]) if best else None


def delivery_checks(data: dict) -> list[tuple[str, str, str, bool]]:
    """(what, measured, target, met) for every configuration of a delivery run."""
    rows = []
    for key, result in data["results"].items():
        sat = result["saturated"]
        rows.append(
            (
                f"{_md_delivery_label(key)}: deliveries/s, saturated",
                f"{sat['deliveries_per_s']:,.0f}",
                f"≥ {TARGET_DELIVERIES_PER_S:,.0f}",
                sat["deliveries_per_s"] >= TARGET_DELIVERIES_PER_S and not sat["missing"],
            )
        )
        # Judged on the upper bound: from the moment the API request left (commit happens within it).
        lat = result["steady"]["request_to_delivery"]
        p99 = lat.get("p99_ms")
        rows.append(
            (
                f"{_md_delivery_label(key)}: p99 commit → delivery at {result['steady']['rate']:g}/s "
                "(from the API request)",
                "—" if p99 is None else f"{p99:,.1f} ms",
                f"< {TARGET_STEADY_P99_MS:g} ms",
                p99 is not None and p99 < TARGET_STEADY_P99_MS and not result["steady"]["missing"],
            )
        )
    return rows


def delivery_table(data: dict) -> str:
    peer = peer_rate(data)
    header = (
        f"{'':38} {'deliv/s':>8} {'÷ peer':>7} {'per CPU-s':>9} {'other':>6}   "
        f"{'p50 ms':>7} {'p99 ms':>7} {'req p99':>7} {'other':>6}"
    )
    lines = ["", header, "-" * len(header)]
    for key, result in data["results"].items():
        sat, st = result["saturated"], result["steady"]
        lat = st["commit_to_delivery"]
        ratio = f"{sat['deliveries_per_s'] / peer:.2f}×" if peer else "—"
        lines.append(
            f"{delivery_label(key):38} {sat['deliveries_per_s']:>8,.0f} {ratio:>7} "
            f"{sat.get('deliveries_per_caja_cpu_s') or float('nan'):>9,.0f} "
            f"{sat.get('cpu', {}).get('other_pct', float('nan')):>5.0f}%   "
            f"{lat.get('p50_ms', float('nan')):>7.1f} {lat.get('p99_ms', float('nan')):>7.1f} "
            f"{st['request_to_delivery'].get('p99_ms', float('nan')):>7.1f} {st['cpu']['other_pct']:>5.0f}%"
        )
    if peer:
        runs = ", ".join(f"{p['deliveries_per_s']:,.0f}" for p in data["peer"]["runs"])
        client = data["settings"].get("http_client", "httpx")
        lines.append(f"{'peer: bare ' + client + ' loop (best of ' + runs + ')':38} {peer:>8,.0f}")
    lines += ["", "Targets:"]
    for what, measured, target, ok in delivery_checks(data):
        lines.append(f"  {what.replace('`', ''):66} {measured:>10}  (target {target})  {_verdict(ok)}")
    for key, result in data["results"].items():
        problems = []
        for phase in ("saturated", "steady"):
            if result[phase]["missing"] or result[phase]["duplicates"]:
                problems.append(
                    f"{phase}: {result[phase]['missing']} missing, {result[phase]['duplicates']} twice"
                )
        if result["steady"]["failed_creates"]:
            problems.append(f"{result['steady']['failed_creates']} failed creates")
        if result.get("log_errors"):
            problems.append(f"{result['log_errors']} error lines in the logs")
        if problems:
            lines.append(f"  {delivery_label(key)}: " + "; ".join(problems))
    lines.append("")
    return "\n".join(lines)


def delivery_markdown(data: dict, source: Path) -> str:
    s = data["settings"]
    peer = peer_rate(data)
    try:
        source_name = str(source.resolve().relative_to(Path(__file__).resolve().parent.parent))
    except ValueError:
        source_name = str(source)
    loads = [
        result[phase]["cpu"]["other_pct"]
        for result in data["results"].values()
        for phase in ("saturated", "steady")
        if "cpu" in result[phase]
    ]
    lines = [
        "## Webhook deliveries",
        "",
        f"From `python bench/delivery.py` on {data['started_at'][:10]} ({source_name}; Caja at commit "
        f"`{data['git']['commit']}`"
        + (
            f", with {data['git']['uncommitted_src_files']} uncommitted files under `src/`"
            if data["git"].get("uncommitted_src_files")
            else ""
        )
        + (", run with `--caja-ref`" if data["git"].get("caja_ref") else "")
        + "). Deliveries to a loopback receiver that answers 200 at once. Pinning: the receiver and the "
        f"load generator on core {s['client_core']}; SQLite's `caja serve` (API and dispatcher in one "
        f"process) and a single `caja worker` on core {s['caja_core']}, like the peer; three workers on "
        f"cores {s.get('workers_cores', s['caja_core'])} (scaling out across cores is why one runs "
        f"several, so they share core {s['client_core']} with the receiver); with PostgreSQL the API "
        f"server (`caja serve --no-dispatcher`, the events' producer) on core {s['client_core']}; "
        "PostgreSQL unpinned. *Caja CPU* counts every Caja process: the share is of one core.",
        "",
    ]
    if loads and max(loads) >= 20:
        lines += [
            f"> **Other work shared the machine**: other processes used {min(loads):.0f}–{max(loads):.0f}% "
            "of it during the measurements, so these figures are pessimistic. The peer ran just before "
            "each configuration, through the same stretches of load.",
            "",
        ]
    lines += [
        "| Target | Measured | Target | |",
        "|---|---:|---:|---|",
    ]
    for what, measured, target, ok in delivery_checks(data):
        lines.append(f"| {what} | {measured} | {target} | {_verdict(ok)} |")
    lines += [
        "",
        f"**Saturated**: {s['events']:,} `customer.created` events committed before any dispatcher "
        "starts, then the dispatchers started; deliveries per second from the first delivery to the "
        "last. *÷ peer* is Caja's rate as a share of the peer's (below). *Per Caja CPU-s*: deliveries "
        "per CPU-second of Caja's processes (all of them), the rate a whole core would give. "
        "*Other load*: the share of the machine used by processes other than Caja's, the receiver, "
        "this benchmark and the database's PostgreSQL backends.",
        "",
        "| Configuration | Deliveries/s | ÷ peer | Per Caja CPU-s | Caja CPU | PostgreSQL CPU-s "
        "| Missing / twice | Other load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, result in data["results"].items():
        sat = result["saturated"]
        cpu = sat.get("cpu", {})
        ratio = f"{sat['deliveries_per_s'] / peer:.2f}×" if peer else "—"
        per_cpu = sat.get("deliveries_per_caja_cpu_s")
        lines.append(
            f"| {_md_delivery_label(key)} | {sat['deliveries_per_s']:,.0f} | {ratio} "
            f"| {'—' if per_cpu is None else f'{per_cpu:,.0f}'} "
            f"| {cpu.get('caja_pct', float('nan')):.0f}% "
            f"| {cpu.get('postgres_s', 0):.1f} | {sat['missing']} / {sat['duplicates']} "
            f"| {cpu.get('other_pct', float('nan')):.0f}% |"
        )
    if peer:
        best = data["peer"]["best"]
        lines.append(
            f"| **Peer**: bare {s.get('http_client', 'httpx')} loop | {peer:,.0f} | 1× | | | | "
            f"{best['requests'] - best['received']} / 0 | |"
        )
    lines += [
        "",
        f"**Unsaturated**: `POST /customers` at {s['rate']:g} per second, or "
        f"{s.get('steady_share', 0.5):.0%} of the rate the configuration sustained when saturated if "
        f"that is lower (so it is not saturated, whatever the machine manages), for "
        f"{s['steady_seconds']:g} s "
        "(open loop: each request leaves at its time, whatever the previous ones did), each committing "
        "one `customer.created` event; per event, the receiver's clock when its delivery arrived minus "
        "the moment the API's answer arrived (the event was committed before the answer left, so this "
        "understates commit → delivery by the time the answer took to come back, and goes negative "
        "when a busy server is slow to answer); *from request* counts from the moment the request "
        "left, so it adds the whole API call: an upper bound, and the figure the target is judged "
        "on.",
        "",
        "| Configuration | Rate | Events | p50 ms | p90 ms | p99 ms | max ms | p50 from request "
        "| p99 from request | API p50 / p99 | Caja CPU | Missing / twice | Other load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, result in data["results"].items():
        st = result["steady"]
        lat, req, api = st["commit_to_delivery"], st["request_to_delivery"], st["api_latency"]
        lines.append(
            f"| {_md_delivery_label(key)} | {st['rate']:g}/s | {st['delivered']:,} "
            f"| {lat.get('p50_ms', float('nan')):.1f} "
            f"| {lat.get('p90_ms', float('nan')):.1f} | {lat.get('p99_ms', float('nan')):.1f} "
            f"| {lat.get('max_ms', float('nan')):.1f} | {req.get('p50_ms', float('nan')):.1f} "
            f"| {req.get('p99_ms', float('nan')):.1f} "
            f"| {api.get('p50_ms', float('nan')):.1f} / {api.get('p99_ms', float('nan')):.1f} "
            f"| {st['cpu']['caja_s']:.1f} s ({st['cpu']['caja_pct']:.0f}%) "
            f"| {st['missing']} / {st['duplicates']} "
            f"| {st['cpu']['other_pct']:.0f}% |"
        )
    problems = []
    for key, result in data["results"].items():
        jobs = ", ".join(f"{n:,} {state}" for state, n in sorted(result.get("jobs", {}).items()))
        problems.append(f"- {_md_delivery_label(key)}: jobs at the end: {jobs}.")
        if result["steady"]["failed_creates"]:
            problems.append(f"  {result['steady']['failed_creates']} creates failed.")
        if result.get("log_errors"):
            kinds = "; ".join(f"{n} × `{k}`" for k, n in (result.get("log_error_kinds") or {}).items())
            problems.append(f"  {result['log_errors']} error-level log lines ({kinds}).")
    lines += ["", "Every delivery was checked against the receiver's record of `webhook-id`s:", "", *problems]
    sample = s.get("caja_sample") or {}
    peer_runs = ", ".join(f"{p['deliveries_per_s']:,.0f}" for p in data["peer"]["runs"])
    lines += [
        "",
        "**The peer** (`bench/delivery_peer.py`): one process on Caja's core running "
        f"{(data['peer'].get('best') or {}).get('concurrency', s['per_endpoint'])} tasks over one "
        + ("`aiohttp.ClientSession`" if s.get("http_client") == "aiohttp" else "`httpx.AsyncClient`")
        + " under uvloop — the client library, event loop and concurrency Caja's "
        "dispatcher uses toward one endpoint (`per_endpoint`) — each posting, in a loop, the same "
        f"{s.get('body_bytes', 0):,}-byte `customer.created` envelope with headers of the sizes Caja "
        "sends (`Digest`, `webhook-id`, `webhook-timestamp`, `webhook-signature`, signed once "
        "beforehand), to the same receiver, timed the same way (the receiver's first to last "
        "arrival). It is what one process on that core can push to that receiver when it does "
        "nothing else: no claiming, no signing, no recording. The ratio shows what share of that "
        "ceiling Caja reaches while doing all of it, and it travels between machines better than "
        "the absolute rate. It ran before each configuration; the best of its "
        f"{len(data['peer']['runs'])} runs "
        f"({peer_runs}/s) is the reference.",
        "",
        f"**Method.** Caja's dispatcher settings are the defaults (concurrency {s['concurrency']}, "
        f"`per_endpoint` {s['per_endpoint']}, poll every {s['poll_interval_s']:g} s) with one "
        "webhook, so at most "
        f"{s['per_endpoint']} deliveries per process are in flight. The events are written the way "
        "`services/customers.create` writes them (`tx.events.add` in a unit of work; its fan-out "
        "enqueues the delivery jobs in the same transaction), 1,000 per transaction, while only "
        "`caja serve --no-dispatcher` runs. SQLite: then `caja serve` with its dispatcher, which "
        "also serves the steady phase's API calls. PostgreSQL: `caja serve --no-dispatcher` serves "
        "the API, the workers (`caja worker`) deliver, woken by `NOTIFY`. Every delivery Caja sent "
        f"carried {', '.join(f'`{h}`' for h in sample.get('headers', [])) or 'its signature headers'} "
        f"and a {sample.get('body_bytes', 0):,}-byte body. The receiver "
        "(`bench/delivery_receiver.py`, uvloop and httptools) notes the time and `webhook-id` of each "
        'POST and answers `200 {"received":true}`. Before each measurement the run waits up to '
        f"{s['idle_wait_s']} s for the machine to be under {s['idle_threshold_pct']:g}% busy.",
        "",
        "```sh",
        "python bench/delivery.py --caja-ref HEAD --write-docs   # this section (~4 min)",
        "python bench/run.py --only delivery --quick              # the same, through run.py",
        "python bench/delivery.py --from-json bench/results/delivery-latest.json --write-docs",
        "```",
    ]
    return "\n".join(lines)
