"""The log's format: every line of a process, Caja's own and the libraries', as JSON (or console
text), with secrets scrubbed; run in a child process so the test runner's logging stays as it is."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging, structlog
from caja import logs
logs.configure("info", json={json})
logging.getLogger("uvicorn.error").info("Started with %s", "key_abcdefghijklmnopqrstu")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("alembic.runtime").exception("it broke")
logging.getLogger("sqlalchemy.engine").debug("below the level")
structlog.get_logger("caja").info("dispatcher started", worker="w1")
"""


def run(json_lines: bool) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(json=json_lines)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    return done.stderr


def test_every_line_is_json_with_its_logger_and_secrets_scrubbed() -> None:
    lines = [json.loads(line) for line in run(True).splitlines()]
    assert [line["event"] for line in lines] == [
        "Started with [REDACTED]",
        "it broke",
        "dispatcher started",
    ]
    started, broke, own = lines
    assert started["logger"] == "uvicorn.error" and started["level"] == "info"
    assert started["timestamp"].endswith("Z")
    assert broke["level"] == "error" and "ZeroDivisionError" in broke["exception"]
    assert own["worker"] == "w1" and own["level"] == "info"


def test_console_lines_for_people() -> None:
    text = run(False)
    assert "Started with [REDACTED]" in text and "key_abc" not in text
    assert "ZeroDivisionError" in text and "dispatcher started" in text
    assert not text.lstrip().startswith("{")
