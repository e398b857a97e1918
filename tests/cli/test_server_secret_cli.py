"""``caja serve`` with a changed CAJA_SECRET stops at once with a clear message, never a 500 later."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import CAJA, free_port


def _caja(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CAJA, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_changed_secret_is_refused_until_the_old_one_is_given(tmp_path: Path) -> None:
    database = {"CAJA_DATABASE_URL": f"sqlite:///{tmp_path / 'caja.db'}"}
    made = _caja(
        "networks",
        "create",
        "--name",
        "Red",
        "--json",
        env={**database, "CAJA_SECRET": "old-secret"},
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr

    refused = _caja(
        "serve", "--port", str(free_port()), env={**database, "CAJA_SECRET": "new-secret"}, cwd=tmp_path
    )
    assert refused.returncode == 2
    assert "CAJA_SECRET_PREVIOUS" in refused.stderr

    rotated = _caja(
        "networks",
        "create",
        "--name",
        "Otra red",
        "--json",
        env={**database, "CAJA_SECRET": "new-secret", "CAJA_SECRET_PREVIOUS": "old-secret"},
        cwd=tmp_path,
    )
    assert rotated.returncode == 0, rotated.stderr
    again = _caja(
        "networks",
        "create",
        "--name",
        "Tercera",
        "--json",
        env={**database, "CAJA_SECRET": "new-secret"},
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
