"""Counting the fsyncs of Caja's SQLite writer, which syncs its WAL itself."""

from __future__ import annotations

import pytest

from caja.store import sqlite as sqlite_backend


def count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, every file the writer syncs (still synced) is appended to the list returned."""
    synced: list[str] = []
    real_fsync = sqlite_backend._fsync_path

    def counting_fsync(file: str) -> None:
        synced.append(file)
        real_fsync(file)

    monkeypatch.setattr(sqlite_backend, "_fsync_path", counting_fsync)
    return synced
