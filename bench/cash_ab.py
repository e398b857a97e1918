"""Two revisions of Caja side by side under the same paced payments, in alternating turns.

A change to a paced payment's cost is often smaller than the machine's own drift over a few
minutes (±15–20% here), so one run of ``cash.py`` per version, minutes apart, cannot tell it.
This serves both revisions at once (each on a database of its own, SQLite or with ``--backend
postgresql`` PostgreSQL, pinned to core 0 like ``cash.py``, one idle while the other is
measured), and runs short paced rounds against each in turn, swapping the order every round: both
meet the same stretches of whatever the machine does.

Each round is a paced lookup run, then a paced payment run of the pairs it looked up (as in
``cash.py``); reported per version: Caja's own p50/p99 per call, CPU per call (payments: with
their e-mails sent), and context switches per call, each round's figure and the median; and
the own p50/p99 over every answer of all the rounds together, as ``cash.py`` reads its target.

    python bench/cash_ab.py --a 3b5e6db --b HEAD --rate 250 --rounds 6
    python bench/cash_ab.py --a HEAD --b .          # "." is the working tree
    python bench/cash_ab.py --a HEAD --b . --backend postgresql --rate 90

Results land in bench/results/cash-ab-*.json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import cash  # noqa: E402
import run as suite  # noqa: E402

STORES = 64


def source_env(ref: str) -> tuple[str, dict[str, str]]:
    """A revision's commit and the environment that runs it ("." is the working tree)."""
    if ref == ".":
        return "working tree", {}
    commit, src = suite.export_caja_src(ref)
    return commit[:7], {"PYTHONPATH": src}


def start(
    stack: contextlib.ExitStack,
    label: str,
    ref: str,
    helpers: dict[str, cash.Helper],
    options: cash.Options,
    backend: str,
) -> cash.Bench:
    commit, env = source_env(ref)
    name = f"ab-{label}"
    if backend == "postgresql":
        url = stack.enter_context(
            suite.fresh_pg_database(options.suite.postgres_url, f"cash_ab_{label.lower()}")
        )
    else:
        url = suite.sqlite_work_file(stack, f"cash-{name}", options.suite)
    cash.log(f"== {label}: {ref} ({commit})")
    base, running = cash.caja_serve(name, url, helpers["sink"], options, env)
    proc = stack.enter_context(running)
    workers = stack.enter_context(cash.caja_worker(name, url, helpers["sink"], options, env))
    cash.register_webhook(base, f"{helpers['endpoint'].base}/approvals")
    network = cash.create_network(url, env)
    references, _ = cash.seed_customers(base, options.customers)
    cash.check_by_hand(base, network, references[0])
    watched = cash.Watched(
        proc.pid, helpers["endpoint"].pid, helpers["sink"].pid, helpers["peer"].pid, proc, tuple(workers)
    )
    bench = cash.Bench(
        name,
        base,
        network,
        cash.Pairs(references[1:]),
        helpers["endpoint"],
        helpers["sink"],
        helpers["peer"],
        watched,
        options,
        options.suite.workdir,
    )
    return bench


def figures(out: dict[str, dict]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for kind in ("lookup", "payment"):
        run = out[kind]
        good = max(run["good"], 1)
        cpu = run["cpu"]["caja_s"]
        if kind == "payment":
            cpu = run["with_mail"]["caja_s"]
        row[kind] = {
            "per_s": run["good_rps"],
            "own_p50_ms": (run["caja_ms"] or {}).get("p50"),
            "own_p99_ms": (run["caja_ms"] or {}).get("p99"),
            # The own time's split, where the version reports it: in units of work, and the rest.
            "db_p50_ms": (run.get("db_ms") or {}).get("p50"),
            "db_p99_ms": (run.get("db_ms") or {}).get("p99"),
            "rest_p50_ms": (run.get("rest_ms") or {}).get("p50"),
            "rest_p99_ms": (run.get("rest_ms") or {}).get("p99"),
            "cpu_us": round(1e6 * cpu / good),
            "switches": round(run["cpu"]["caja_switches"] / good, 1),
            "errors": run["errors"],
            # Pauses of the whole machine during the run (pause_witness.py), which every call in
            # flight took in full: a round with many reads high whatever the version.
            "machine_paused_ms": (run.get("machine_pauses") or {}).get("paused_ms"),
            # Every answer's own time (cash_paced.lua), pooled over the rounds by `pooled`.
            "own_ms_samples": run.get("own_ms_samples") or [],
        }
    return row


def pooled(rounds: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """Own p50/p99 over every answer of every round together, as ``cash.py`` reads its target."""
    values = [v for r in rounds for v in r[kind]["own_ms_samples"]]
    return cash.pooled_percentiles(values, len(rounds)) if values else {"count": 0, "rounds": len(rounds)}


def table(results: dict[str, list[dict[str, Any]]], labels: dict[str, str]) -> str:
    lines = []
    for kind in ("payment", "lookup"):
        lines.append(f"{kind}s: own p50 / p99 ms, CPU µs per call, switches per call")
        for label, rounds in results.items():
            cells = [
                f"{r[kind]['own_p50_ms']:.1f}/{r[kind]['own_p99_ms']:.1f} {r[kind]['cpu_us']:,} "
                f"{r[kind]['switches']:.1f}"
                for r in rounds
            ]
            med = {
                k: statistics.median(r[kind][k] for r in rounds)
                for k in ("own_p50_ms", "own_p99_ms", "cpu_us", "switches")
            }
            lines.append(
                f"  {label} {labels[label]:>12}: median {med['own_p50_ms']:.1f}/{med['own_p99_ms']:.1f} ms "
                f"{med['cpu_us']:,.0f} µs {med['switches']:.1f} sw | " + "  ".join(cells)
            )
            every = pooled(rounds, kind)
            if every["count"]:
                paused = [r[kind]["machine_paused_ms"] for r in rounds]
                lines.append(
                    f"  {'':>{len(label) + 14}}  pooled over {every['count']:,} answers: "
                    f"p50 {every['p50']:.2f} ms, p99 {every['p99']:.2f} ms; the machine paused "
                    + " ".join("?" if p is None else f"{p:,.0f}" for p in paused)
                    + " ms in its rounds"
                )
            if all(r[kind]["db_p99_ms"] is not None for r in rounds):
                split = {
                    k: statistics.median(r[kind][k] for r in rounds)
                    for k in ("db_p50_ms", "db_p99_ms", "rest_p50_ms", "rest_p99_ms")
                }
                lines.append(
                    f"  {'':>{len(label) + 14}}  of which units of work {split['db_p50_ms']:.1f}/"
                    f"{split['db_p99_ms']:.1f} ms, the rest {split['rest_p50_ms']:.1f}/"
                    f"{split['rest_p99_ms']:.1f} ms"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", required=True, help="a revision, or . for the working tree")
    parser.add_argument("--b", required=True, help="another revision, or . for the working tree")
    parser.add_argument("--rate", type=float, default=250.0, help="calls/s the 64 stores offer (250)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds, each version once per round (6)")
    parser.add_argument("--duration", type=int, default=8, help="seconds of each paced run (8)")
    parser.add_argument("--customers", type=int, default=2000, help="customers seeded in each (2,000)")
    parser.add_argument(
        "--b-worker",
        action="store_true",
        help="B's e-mail sent by a `caja worker` beside `caja serve --no-dispatcher` (A: inside it)",
    )
    parser.add_argument(
        "--caja-cores", default=cash.CAJA_CORE, help="taskset cores of both `caja serve`s (0; or 0,1)"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite", help="(sqlite)")
    parser.add_argument(
        "--postgres-url",
        default=suite.POSTGRES_ADMIN_URL,
        help="an administrator's URL: each version gets a fresh database of its own",
    )
    args = parser.parse_args(argv)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = cash.RESULTS / "work"
    log_dir = cash.RESULTS / "logs" / f"cash-ab-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    suite_options = suite.Options(
        duration=args.duration,
        warmup=0,
        connections=STORES,
        threads=1,
        timeout=10,
        postgres_url=args.postgres_url,
        workdir=workdir,
        log_dir=log_dir,
        idle_wait=20,
        idle_threshold=15.0,
        repeat=args.rounds,
    )
    options = cash.Options(
        duration=args.duration,
        warmup=0,
        repeat=args.rounds,
        customers=args.customers,
        concurrencies=(STORES,),
        timeout=10,
        profile_seconds=0,
        suite=suite_options,
        paced_rate=args.rate,
        caja_cores=args.caja_cores,
    )
    refs = {"A": args.a, "B": args.b}
    results: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    # Named now: HEAD may move while the rounds run, and each server runs what was exported at start.
    labels = {label: source_env(ref)[0] for label, ref in refs.items()}
    with contextlib.ExitStack() as stack:
        helpers = {
            "endpoint": stack.enter_context(cash.helper("approval-endpoint", cash.CLIENT_CORE, options)),
            "sink": stack.enter_context(cash.helper("smtp-sink", cash.CLIENT_CORE, options, smtp=True)),
            "peer": stack.enter_context(cash.helper("peer-endpoint", cash.CAJA_CORE, options)),
        }
        # One sink for both: a run's CPU "with its e-mails" waits for every e-mail paid so far.
        expected = helpers["sink"].counts()["mails"]
        placed = {"A": options, "B": dataclasses.replace(options, worker=args.b_worker)}
        benches = {
            label: start(stack, label, ref, helpers, placed[label], args.backend)
            for label, ref in refs.items()
        }
        expected += len(benches)  # each one's payment checked by hand

        def paced(bench: cash.Bench, seconds: int, tag: str = "") -> dict[str, dict]:
            nonlocal expected
            bench.paid_total = expected
            out = bench.paced_round(STORES, seconds, args.rate, tag=tag)
            expected = bench.paid_total
            return out

        for bench in benches.values():  # warm both up: their first seconds are not measured
            paced(bench, 2, tag="-warmup")
        for round_ in range(args.rounds):
            order = ["A", "B"] if round_ % 2 == 0 else ["B", "A"]
            for label in order:
                results[label].append(figures(paced(benches[label], args.duration)))
            time.sleep(0.5)
    print(table(results, labels))
    out = cash.RESULTS / f"cash-ab-{stamp}.json"
    data = {
        "refs": refs,
        "commits": labels,
        "rate": args.rate,
        "duration_s": args.duration,
        "caja_cores": args.caja_cores,
        "backend": args.backend,
    }
    data["pooled"] = {
        label: {kind: pooled(rounds, kind) for kind in ("lookup", "payment")}
        for label, rounds in results.items()
    }
    for rounds in results.values():  # the samples are summed up in "pooled"
        for r in rounds:
            for kind in ("lookup", "payment"):
                del r[kind]["own_ms_samples"]
    data["rounds"] = results
    out.write_text(json.dumps(data, indent=2) + "\n")
    cash.log(f"results: {out.relative_to(cash.ROOT)}")


if __name__ == "__main__":
    main()
