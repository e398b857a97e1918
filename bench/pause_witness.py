"""A witness of the machine's own pauses: a process that sleeps 2 ms at a time and notes how late it wakes.

On the 2-core VMs these benchmarks run on, the hypervisor sometimes stops the whole VM: with the
machine otherwise idle, a sleeper on each core overslept by 8–57 ms at the same moments, a few
times a minute (session 22). Every call in flight during such a pause takes it in full, so at a
paced load a pause shows in the tail of the latencies whatever the server does. Both cores stop
together, so a witness on the load generator's core (nearly idle at a paced load) sees the pauses
of the server's core without taking any of its CPU.

    python bench/pause_witness.py --core 1      # until SIGTERM; then one JSON line on stdout

Run by ``cash.py`` beside each paced run (``PauseWitness``); reports every oversleep of more
than ``--threshold-ms`` (5): how many, their total and the longest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

TICK_S = 0.002


def watch(threshold_ms: float) -> dict[str, Any]:
    stop = False

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    pauses: list[float] = []
    began = time.perf_counter()
    while not stop:
        before = time.perf_counter()
        time.sleep(TICK_S)
        late_ms = (time.perf_counter() - before - TICK_S) * 1000
        if late_ms > threshold_ms:
            pauses.append(late_ms)
    return {
        "seconds": round(time.perf_counter() - began, 1),
        "threshold_ms": threshold_ms,
        "pauses": len(pauses),
        "paused_ms": round(sum(pauses), 1),
        "longest_ms": round(max(pauses, default=0.0), 1),
    }


class PauseWitness:
    """``with PauseWitness(core) as w: ...``; then ``w.result`` (None if the witness failed)."""

    def __init__(self, core: str, threshold_ms: float = 5.0) -> None:
        self._command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--core",
            core,
            "--threshold-ms",
            str(threshold_ms),
        ]
        self._process: subprocess.Popen[str] | None = None
        self.result: dict[str, Any] | None = None

    def __enter__(self) -> PauseWitness:
        self._process = subprocess.Popen(self._command, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            out, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return
        with contextlib.suppress(ValueError):
            self.result = json.loads(out.strip().splitlines()[-1]) if out.strip() else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--core", type=int, help="the core to run on (default: any)")
    parser.add_argument("--threshold-ms", type=float, default=5.0, help="count oversleeps beyond this (5)")
    args = parser.parse_args()
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    print(json.dumps(watch(args.threshold_ms)), flush=True)


if __name__ == "__main__":
    main()
