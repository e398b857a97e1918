"""Pages a paid payment's outbox jobs write to SQLite's WAL, counted rather than timed.

A durable payment is answered once its WAL frames are on disk, so on a disk whose sync time
grows with what is written, the pages a commit touches are part of its latency. Unlike a
timing, the count does not depend on the machine, so it can tell a change to the schema apart
on any machine, however noisy. This builds the schema with Caja's migrations, fills ``jobs``
with earlier payments' jobs (so the indexes have their depth), then commits batches shaped like
a paid payment's (one webhook delivery per event, four events, plus the payer's receipt) with
checkpoints off, and divides the frames the WAL gained by the batches.

    python bench/wal_pages.py                   # the schema as migrated
    python bench/wal_pages.py --full-indexes    # with the job indexes before migration 0007
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from caja.domain import ids
from caja.store import migrate
from caja.store.db import Database
from caja.store.tables import jobs

EVENTS_PER_PAYMENT = 4  # order.created, charge.created, charge.paid, order.paid
WAL_HEADER, FRAME_HEADER = 32, 24
_COLUMNS = [c.key for c in jobs.columns if c.key != "seq"]
_INSERT = f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
# A receipt's payload is its template's values (~400 bytes as JSON); a delivery's is the event.
_RECEIPT = json.dumps({"to": ["a@example.com"], "template": "pago_exitoso", "context": {"v": "x" * 400}})


def _delivery(event_bytes: int) -> str:
    return json.dumps({"url": "http://127.0.0.1:9/hooks", "body": {"data": "x" * event_bytes}})


def _job(kind: str, event_id: str | None, webhook_id: str | None, payload: str) -> list[Any]:
    values: dict[str, Any] = dict.fromkeys(_COLUMNS)
    values |= {
        "id": ids.new_ordered_id("webhl_" if kind == "webhook" else "eml_"),
        "kind": kind,
        "account_id": "acc_bench",
        "livemode": 0,
        "event_id": event_id,
        "webhook_id": webhook_id,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "run_at": 0,
        "created_at": 0,
    }
    return [values[c] for c in _COLUMNS]


def _payment(conn: sqlite3.Connection, delivery: str) -> None:
    for _ in range(EVENTS_PER_PAYMENT):
        conn.execute(_INSERT, _job("webhook", ids.new_ordered_id("evt_"), "web_bench", delivery))
    conn.execute(_INSERT, _job("email", None, None, _RECEIPT))


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()


def frames_per_payment(
    path: Path, *, earlier: int, batches: int, full_indexes: bool, event_bytes: int
) -> float:
    delivery = _delivery(event_bytes)
    asyncio.run(_migrate(f"sqlite:///{path}"))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        if full_indexes:
            conn.execute("DROP INDEX ix_jobs_event")
            conn.execute("DROP INDEX ix_jobs_webhook")
            conn.execute("CREATE INDEX ix_jobs_event ON jobs (event_id)")
            conn.execute("CREATE INDEX ix_jobs_webhook ON jobs (webhook_id, seq)")
        conn.execute("BEGIN")
        for _ in range(earlier):
            _payment(conn, delivery)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        for _ in range(batches):
            conn.execute("BEGIN")
            _payment(conn, delivery)
            conn.execute("COMMIT")
        wal = path.with_name(path.name + "-wal").stat().st_size
    finally:
        conn.close()
    return (wal - WAL_HEADER) / (page_size + FRAME_HEADER) / batches


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full-indexes", action="store_true", help="index every job, as before 0007")
    parser.add_argument("--earlier", type=int, default=4000, help="payments' jobs already in the table")
    parser.add_argument("--batches", type=int, default=2000, help="payments to count")
    parser.add_argument("--event-bytes", type=int, default=2000, help="bytes of each delivered event body")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        frames = frames_per_payment(
            Path(scratch) / "wal-pages.db",
            earlier=args.earlier,
            batches=args.batches,
            full_indexes=args.full_indexes,
            event_bytes=args.event_bytes,
        )
    schema = "job indexes as before migration 0007" if args.full_indexes else "schema as migrated"
    print(f"{schema}: {frames:.2f} WAL frames per paid payment's jobs ({args.batches} commits)")


if __name__ == "__main__":
    main()
