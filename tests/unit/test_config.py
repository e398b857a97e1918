"""Settings from the environment: a value of the wrong form names its variable, and the CLI says so."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from caja.cli import worker_settings
from caja.config import (
    DeliverySettings,
    EmailInTestMode,
    MailSettings,
    RetentionSettings,
    Settings,
    SettingsError,
    SmtpSecurity,
)
from caja.domain.jobs import SVIX_SCHEDULE
from tests.conftest import CAJA


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("CAJA_PORT", "abc", "CAJA_PORT must be an integer, not 'abc'"),
        ("CAJA_DB_POOL_SIZE", "2.5", "CAJA_DB_POOL_SIZE must be an integer"),
        ("CAJA_APPROVAL_TIMEOUT", "two", "CAJA_APPROVAL_TIMEOUT must be a number"),
        ("CAJA_CASH_FEE_FIXED", "1.5", "CAJA_CASH_FEE_FIXED must be an integer"),
        ("CAJA_SMTP_SECURITY", "ssl", "CAJA_SMTP_SECURITY must be one of starttls, tls, none"),
        ("CAJA_SMTP_PORT", "smtp", "CAJA_SMTP_PORT must be a port number"),
        ("CAJA_TEST_MODE_EMAIL", "inbox", "CAJA_TEST_MODE_EMAIL must be one of catcher, relay"),
        ("CAJA_WEBHOOK_RETRY_SCHEDULE", "0,-5", "CAJA_WEBHOOK_RETRY_SCHEDULE must be comma-separated"),
        ("CAJA_SIGNING_THREADS", "-1", "CAJA_SIGNING_THREADS must be auto or a count"),
        ("CAJA_SIGNING_THREADS", "many", "CAJA_SIGNING_THREADS must be auto or a count"),
        ("CAJA_STORE_CALL_SLOTS", "-1", "CAJA_STORE_CALL_SLOTS must be a count"),
        ("CAJA_METRICS_PORT", "70000", r"CAJA_METRICS_PORT must be a port \(1-65535\)"),
        ("CAJA_METRICS_PORT", "metrics", r"CAJA_METRICS_PORT must be a port \(1-65535\)"),
    ],
)
def test_a_value_of_the_wrong_form_names_its_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        Settings.from_env({name: value})


def test_unset_and_well_formed_values() -> None:
    assert Settings.from_env({}) == Settings()
    read = Settings.from_env(
        {
            "CAJA_PORT": "9000",
            "CAJA_APPROVAL_TIMEOUT": "1.5",
            "CAJA_SMTP_SECURITY": "TLS",
            "CAJA_SMTP_PORT": "2525",
            "CAJA_WEBHOOK_RETRY_SCHEDULE": "0, 5, 60",
            "CAJA_SIGNING_THREADS": "2",
            "CAJA_DISPATCHER": "off",
            "CAJA_STORE_CALL_SLOTS": "0",
            "CAJA_METRICS_PORT": "9464",
            "CAJA_METRICS_HOST": "0.0.0.0",
            "CAJA_TEST_MODE_EMAIL": "Relay",
        }
    )
    assert read.metrics_port == 9464 and read.metrics_host == "0.0.0.0"
    assert read.port == 9000 and read.delivery.approval_timeout == 1.5
    assert read.mail == MailSettings(
        smtp_security=SmtpSecurity.TLS, smtp_port=2525, test_mode_email=EmailInTestMode.RELAY
    )
    assert Settings().mail.test_mode_email is EmailInTestMode.CATCHER
    assert read.delivery.retry_schedule == (0.0, 5.0, 60.0)
    assert read.delivery.signing_threads == 2 and read.delivery.dispatcher is False
    assert read.store_call_slots == 0 and Settings().store_call_slots == 2
    # An empty schedule or port is as good as unset, as before.
    blank = Settings.from_env(
        {"CAJA_WEBHOOK_RETRY_SCHEDULE": " ", "CAJA_SMTP_PORT": "", "CAJA_METRICS_PORT": ""}
    )
    assert blank.delivery.retry_schedule == SVIX_SCHEDULE and blank.mail.smtp_port is None
    assert blank.metrics_port is None


def test_signing_threads_default_to_auto_in_serve_and_to_none_in_a_worker() -> None:
    assert DeliverySettings.from_env({}).signing_threads is None
    assert DeliverySettings.from_env({"CAJA_SIGNING_THREADS": "AUTO"}).signing_threads is None
    assert worker_settings(Settings(), None).delivery.signing_threads == 0
    chosen = Settings.from_env({"CAJA_SIGNING_THREADS": "3"})
    assert worker_settings(chosen, 4).delivery.signing_threads == 3
    assert worker_settings(chosen, 4).delivery.concurrency == 4


def test_retention_is_ninety_days_by_default_in_days_or_off() -> None:
    assert Settings().retention == RetentionSettings(days=90.0, interval=3600.0)
    assert Settings().retention.window == 90 * 86_400
    read = Settings.from_env({"CAJA_RETENTION_DAYS": "0.5", "CAJA_RETENTION_INTERVAL": "60"})
    assert read.retention.window == 43_200 and read.retention.interval == 60.0
    assert Settings.from_env({"CAJA_RETENTION_DAYS": "off"}).retention.window == 0
    assert Settings.from_env({"CAJA_RETENTION_DAYS": "0"}).retention.window == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CAJA_RETENTION_DAYS", "-1", "CAJA_RETENTION_DAYS must be a number of days (0 or more), not '-1'"),
        ("CAJA_RETENTION_DAYS", "nan", "CAJA_RETENTION_DAYS must be a number of days (0 or more), not 'nan'"),
        (
            "CAJA_RETENTION_DAYS",
            "ninety",
            "CAJA_RETENTION_DAYS must be a number of days (0 or more), not 'ninety'",
        ),
        (
            "CAJA_RETENTION_INTERVAL",
            "0",
            "CAJA_RETENTION_INTERVAL must be a number of seconds above 0, not '0'",
        ),
        (
            "CAJA_RETENTION_INTERVAL",
            "inf",
            "CAJA_RETENTION_INTERVAL must be a number of seconds above 0, not 'inf'",
        ),
    ],
)
def test_a_retention_setting_out_of_range_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({name: value})
    assert str(raised.value) == message


@pytest.mark.parametrize("command", ["serve", "worker", "migrate", "prune"])
def test_the_cli_stops_with_the_message_not_a_traceback(command: str, tmp_path: Path) -> None:
    env = {**os.environ, "CAJA_DATABASE_URL": f"sqlite:///{tmp_path / 'caja.db'}", "CAJA_KEEP_ALIVE": "long"}
    done = subprocess.run([*CAJA, command], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "caja: CAJA_KEEP_ALIVE must be an integer, not 'long'"
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "caja.db").exists()  # stopped before touching the database
