"""Settings: read once, from the command line and the environment, by the composition root."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from caja.domain.cash_payments import CashLimits, CashSettings
from caja.domain.jobs import DEFAULT_DISABLE_AFTER, DEFAULT_MAX_RETRY_AFTER, SVIX_SCHEDULE, parse_schedule
from caja.domain.pricing import CashPricing

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting in the environment that cannot be used; the message names the variable."""


@dataclass(frozen=True, slots=True)
class _Env:
    """Typed reads of the environment; a value of the wrong form is a SettingsError naming it."""

    environ: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        return self.environ.get(name, default)

    def optional(self, name: str) -> str | None:
        return self.environ.get(name) or None

    def integer(self, name: str, default: int) -> int:
        return self.parsed(name, default, int, "an integer")

    def number(self, name: str, default: float) -> float:
        return self.parsed(name, default, float, "a number")

    def switch(self, name: str) -> bool:
        """On unless set to off, 0, false or no."""
        return self.environ.get(name, "on").lower() not in {"off", "0", "false", "no"}

    def parsed(self, name: str, default: T, parse: Callable[[str], T], what: str) -> T:
        """``parse`` of the variable's value, ``default`` when it is unset; ``what``: the form expected."""
        value = self.environ.get(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as exc:
            raise SettingsError(f"{name} must be {what}, not {value!r}") from exc


DEFAULT_DATABASE_URL = "sqlite:///caja.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8300


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """The outbox dispatcher, webhook deliveries and synchronous approvals. Durations in seconds."""

    # Run the dispatcher inside ``caja serve`` (off when separate ``caja worker`` processes do it).
    dispatcher: bool = True
    # Jobs one process runs at once, and at most this many per webhook endpoint.
    concurrency: int = 32
    per_endpoint: int = 8
    # How often an idle dispatcher looks for due jobs (commits in this process wake it at once).
    poll_interval: float = 0.2
    # A claimed job's lease, renewed while it runs; a dead worker's jobs are retried after it ends.
    lease: float = 30.0
    webhook_timeout: float = 10.0
    retry_schedule: tuple[float, ...] = SVIX_SCHEDULE
    retry_jitter: float = 0.2
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    # A webhook failing for this long without a success in between is disabled.
    disable_after: float = DEFAULT_DISABLE_AFTER
    # The whole budget of a synchronous approval call (Conekta gives merchants two seconds).
    approval_timeout: float = 2.0
    # In ``caja serve``, how long a background job (an e-mail) waits for a moment when no request
    # is in flight before it runs anyway (caja.delivery.priority).
    background_max_wait: float = 1.0
    # Threads that compute RSA signatures beside the event loop; None: one per core the process
    # may use beyond the loop's, up to four (caja.delivery.signing.default_signing_threads).
    signing_threads: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DeliverySettings:
        base = cls()
        env = _Env(environ)
        return cls(
            dispatcher=env.switch("CAJA_DISPATCHER"),
            concurrency=env.integer("CAJA_DISPATCHER_CONCURRENCY", base.concurrency),
            per_endpoint=env.integer("CAJA_DISPATCHER_PER_ENDPOINT", base.per_endpoint),
            poll_interval=env.number("CAJA_DISPATCHER_POLL_INTERVAL", base.poll_interval),
            lease=env.number("CAJA_JOB_LEASE", base.lease),
            webhook_timeout=env.number("CAJA_WEBHOOK_TIMEOUT", base.webhook_timeout),
            retry_schedule=env.parsed(
                "CAJA_WEBHOOK_RETRY_SCHEDULE",
                base.retry_schedule,
                lambda v: parse_schedule(v) if v.strip() else base.retry_schedule,
                "comma-separated seconds, none negative",
            ),
            retry_jitter=env.number("CAJA_WEBHOOK_RETRY_JITTER", base.retry_jitter),
            max_retry_after=env.number("CAJA_WEBHOOK_MAX_RETRY_AFTER", base.max_retry_after),
            disable_after=env.number("CAJA_WEBHOOK_DISABLE_AFTER", base.disable_after),
            approval_timeout=env.number("CAJA_APPROVAL_TIMEOUT", base.approval_timeout),
            background_max_wait=env.number("CAJA_BACKGROUND_MAX_WAIT", base.background_max_wait),
            signing_threads=env.parsed(
                "CAJA_SIGNING_THREADS", None, signing_threads, "auto or a count of threads (0 or more)"
            ),
        )


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long traffic's by-products are kept (caja.services.retention)."""

    # Events with their deliveries, the approval calls' log, e-mail jobs, caught e-mails and
    # expired store lookups go once this many days old; 0 keeps everything.
    days: float = 90.0
    # How often each process that runs a dispatcher prunes, in seconds.
    interval: float = 3600.0

    @property
    def window(self) -> float:
        """The retention window in seconds (0: keep everything)."""
        return self.days * 86_400

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RetentionSettings:
        base = cls()
        env = _Env(environ)
        return cls(
            days=env.parsed("CAJA_RETENTION_DAYS", base.days, retention_days, "a number of days (0 or more)"),
            interval=env.parsed(
                "CAJA_RETENTION_INTERVAL", base.interval, positive_seconds, "a number of seconds above 0"
            ),
        )


def retention_days(value: str) -> float:
    """``CAJA_RETENTION_DAYS``: days, fractions allowed; ``0`` or ``off`` keeps everything."""
    if value.strip().lower() == "off":
        return 0.0
    days = float(value)
    if not days >= 0 or days == float("inf"):
        raise ValueError("not a finite number of days, 0 or more")
    return days


def positive_seconds(value: str) -> float:
    seconds = float(value)
    if not 0 < seconds < float("inf"):
        raise ValueError("not a finite number of seconds above 0")
    return seconds


def signing_threads(value: str) -> int | None:
    """``CAJA_SIGNING_THREADS``: ``auto`` (None) or a count, 0 to sign on the event loop."""
    if value.strip().lower() == "auto":
        return None
    threads = int(value)
    if threads < 0:
        raise ValueError("a negative count of threads")
    return threads


def store_call_slots(value: str) -> int:
    """``CAJA_STORE_CALL_SLOTS``: how many store calls work on the event loop at once; 0, no limit."""
    slots = int(value)
    if slots < 0:
        raise ValueError("a negative count of calls")
    return slots


def optional_port(value: str) -> int | None:
    """A TCP port; blank, as good as unset (like ``CAJA_SMTP_PORT``)."""
    if not value.strip():
        return None
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError("a port outside 1-65535")
    return port


def cash_settings_from_env(environ: Mapping[str, str]) -> CashSettings:
    base = CashSettings()
    integer = _Env(environ).integer
    return CashSettings(
        limits=CashLimits(
            min_amount=integer("CAJA_CASH_MIN_AMOUNT", base.limits.min_amount),
            max_amount=integer("CAJA_CASH_MAX_AMOUNT", base.limits.max_amount),
        ),
        pricing=CashPricing(
            rate_bp=integer("CAJA_CASH_FEE_RATE_BP", base.pricing.rate_bp),
            fixed=integer("CAJA_CASH_FEE_FIXED", base.pricing.fixed),
            tax_bp=integer("CAJA_CASH_FEE_TAX_BP", base.pricing.tax_bp),
        ),
        lookup_ttl=integer("CAJA_CASH_LOOKUP_TTL", base.lookup_ttl),
        reversal_window=integer("CAJA_CASH_REVERSAL_WINDOW", base.reversal_window),
    )


class SmtpSecurity(enum.StrEnum):
    """How the mailer secures its SMTP connection."""

    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (submission, port 587)
    TLS = "tls"  # TLS from the first byte (SMTPS, port 465)
    NONE = "none"  # no encryption (a relay on the same host or network only)


class EmailInTestMode(enum.StrEnum):
    """Where the e-mails that test-mode activity sends to payers go."""

    CATCHER = "catcher"  # the built-in mail catcher only: never a real inbox (as Stripe's test mode)
    RELAY = "relay"  # the configured SMTP server, like live mode's


_DEFAULT_SMTP_PORTS = {SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465, SmtpSecurity.NONE: 25}
DEFAULT_MAIL_CATCHER_PORT = 8325


@dataclass(frozen=True, slots=True)
class MailSettings:
    """Outgoing e-mail (SMTP) and the sandbox's built-in mail catcher."""

    # The SMTP server to send through; None: the built-in catcher (when it runs), else nowhere.
    smtp_host: str | None = None
    smtp_port: int | None = None  # None: 587, 465 or 25 by ``smtp_security``
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    smtp_username: str | None = None
    smtp_password: str | None = None
    # A PEM bundle to trust instead of the system's CAs (a private relay's own certificate).
    smtp_ca_file: str | None = None
    smtp_timeout: float = 30.0
    mail_from: str = "Caja <no-reply@caja.localhost>"
    # ``caja serve`` runs an SMTP server on ``catcher_host:catcher_port`` that keeps every message
    # it receives in the database (``/_caja/emails``, the dashboard). Sandbox and development only.
    catcher: bool = True
    catcher_host: str = "127.0.0.1"
    catcher_port: int = DEFAULT_MAIL_CATCHER_PORT
    # Test keys must not reach the real world: by default a test payment's receipt goes to the
    # catcher even when an SMTP server is configured (the relay check of /_caja/emails does not).
    test_mode_email: EmailInTestMode = EmailInTestMode.CATCHER

    @property
    def port(self) -> int:
        return self.smtp_port or _DEFAULT_SMTP_PORTS[self.smtp_security]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MailSettings:
        base = cls()
        env = _Env(environ)
        return cls(
            smtp_host=env.optional("CAJA_SMTP_HOST"),
            smtp_port=env.parsed("CAJA_SMTP_PORT", None, lambda v: int(v) if v else None, "a port number"),
            smtp_security=env.parsed(
                "CAJA_SMTP_SECURITY",
                base.smtp_security,
                lambda v: SmtpSecurity(v.lower()),
                "one of " + ", ".join(s.value for s in SmtpSecurity),
            ),
            smtp_username=env.optional("CAJA_SMTP_USERNAME"),
            smtp_password=env.optional("CAJA_SMTP_PASSWORD"),
            smtp_ca_file=env.optional("CAJA_SMTP_CA_FILE"),
            smtp_timeout=env.number("CAJA_SMTP_TIMEOUT", base.smtp_timeout),
            mail_from=env.optional("CAJA_SMTP_FROM") or base.mail_from,
            catcher=env.switch("CAJA_MAIL_CATCHER"),
            catcher_host=env.text("CAJA_MAIL_CATCHER_HOST", base.catcher_host),
            catcher_port=env.integer("CAJA_MAIL_CATCHER_PORT", base.catcher_port),
            test_mode_email=env.parsed(
                "CAJA_TEST_MODE_EMAIL",
                base.test_mode_email,
                lambda v: EmailInTestMode(v.lower()),
                "one of " + ", ".join(m.value for m in EmailInTestMode),
            ),
        )


DEFAULT_KEEP_ALIVE = 75


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Fixed sandbox test key, so scripts and test suites can rely on it.
    api_key: str | None = None
    # Where payers' browsers reach Caja (barcode images, slips); defaults to http://host:port.
    public_url: str | None = None
    # Encrypts webhook private keys and signing secrets at rest. Set CAJA_SECRET (the same on every
    # process of one database) in production; without it Caja keeps a generated one in the database.
    secret: str | None = None
    # The secret CAJA_SECRET replaces: values sealed under it are re-sealed on start.
    previous_secret: str | None = None
    # The operator's bearer token for GET /metrics (CAJA_ADMIN_TOKEN); unset, /metrics is off.
    admin_token: str | None = None
    # Where ``caja worker`` serves GET /metrics (CAJA_METRICS_HOST, CAJA_METRICS_PORT); no port: nowhere.
    metrics_host: str = DEFAULT_HOST
    metrics_port: int | None = None
    log_level: str = "info"
    log_json: bool = True
    db_pool_size: int = 20
    # Seconds an idle HTTP connection stays open. A store network keeps connections open across
    # the pauses between sales; uvicorn's own 5 s would make it reconnect after most of them.
    keep_alive: int = DEFAULT_KEEP_ALIVE
    # Store network calls (lookups, payments) at work on the event loop at once; later ones wait
    # for a slot, and a call waiting for the merchant gives its slot up (caja.admission). 0: no limit.
    store_call_slots: int = 2
    delivery: DeliverySettings = DeliverySettings()
    mail: MailSettings = MailSettings()
    cash: CashSettings = field(default_factory=CashSettings)
    retention: RetentionSettings = RetentionSettings()

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        base = cls()
        env = _Env(environ)
        return replace(
            base,
            database_url=env.text("CAJA_DATABASE_URL", base.database_url),
            host=env.text("CAJA_HOST", base.host),
            port=env.integer("CAJA_PORT", base.port),
            api_key=env.optional("CAJA_API_KEY"),
            public_url=env.optional("CAJA_PUBLIC_URL"),
            secret=env.optional("CAJA_SECRET"),
            previous_secret=env.optional("CAJA_SECRET_PREVIOUS"),
            admin_token=env.optional("CAJA_ADMIN_TOKEN"),
            metrics_host=env.text("CAJA_METRICS_HOST", base.metrics_host),
            metrics_port=env.parsed("CAJA_METRICS_PORT", None, optional_port, "a port (1-65535)"),
            log_level=env.text("CAJA_LOG_LEVEL", base.log_level).lower(),
            log_json=env.text("CAJA_LOG_FORMAT", "json").lower() != "console",
            db_pool_size=env.integer("CAJA_DB_POOL_SIZE", base.db_pool_size),
            keep_alive=env.integer("CAJA_KEEP_ALIVE", base.keep_alive),
            store_call_slots=env.parsed(
                "CAJA_STORE_CALL_SLOTS", base.store_call_slots, store_call_slots, "a count (0 or more)"
            ),
            delivery=DeliverySettings.from_env(environ),
            mail=MailSettings.from_env(environ),
            cash=cash_settings_from_env(environ),
            retention=RetentionSettings.from_env(environ),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
