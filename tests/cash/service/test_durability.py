"""What a store's answer waits for on SQLite, where syncing the disk is Caja's own work.

A payment's answer waits until the WAL holding it is on disk; a lookup's does not (a lookup the
machine's power takes with it is only a question asked of the merchant again), and neither does
the approval calls' log. PostgreSQL flushes its own WAL on every commit: nothing to tell apart.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.engine import make_url

from caja.delivery.approvals import ApprovalClient
from caja.services import cash_payments
from caja.services.cash_payments import CashDesk, LookupRequest, PaymentRequest
from caja.store.db import Database
from tests.cash.service.test_time_rules import _network, _reference, desk  # noqa: F401 (fixture)
from tests.delivery.conftest import World
from tests.tools.fsyncs import count_fsyncs

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def test_a_lookup_is_committed_without_an_fsync_and_a_payment_waits_for_one(
    desk: CashDesk,  # noqa: F811 (the fixture imported above)
    world: World,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    network = (await _network(desk, world)).network
    reference = await _reference(desk, world)
    synced = count_fsyncs(monkeypatch)

    looked_up = await cash_payments.lookup(desk, network, LookupRequest(reference, "Soriana"))
    assert looked_up.lookup is not None
    assert synced == []
    # Nor does the approval calls' log, written in the background meanwhile.
    assert isinstance(desk.approvals, ApprovalClient)
    await desk.approvals.flush()
    assert synced == []
    # Both committed all the same: another connection (another process) sees them at once.
    path = make_url(database.url).database
    assert path is not None
    with sqlite3.connect(path) as raw:
        seen = raw.execute("SELECT store FROM cash_lookups WHERE id = ?", (looked_up.lookup.id,)).fetchall()
        logged = raw.execute("SELECT count(*) FROM jobs WHERE kind = 'approval'").fetchone()[0]
    assert seen == [("Soriana",)]
    assert logged == 1

    paid = await cash_payments.pay(
        desk, network, PaymentRequest(reference, 10_000, "Soriana", "t-1", lookup_id=looked_up.lookup.id)
    )
    assert paid.body["status"] == "paid"
    # The payment's batch was synced before it answered, and its fsync covers the lookup's frames.
    assert synced == [f"{path}-wal"]
