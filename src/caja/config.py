"""Settings: read once, from the command line and the environment, by the composition root."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from caja.domain.cash_payments import CashLimits, CashSettings
from caja.domain.jobs import DEFAULT_DISABLE_AFTER, DEFAULT_MAX_RETRY_AFTER, SVIX_SCHEDULE, parse_schedule
from caja.domain.pricing import CashPricing

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

        def number(name: str, default: float) -> float:
            return float(environ.get(name, default))

        schedule = environ.get("CAJA_WEBHOOK_RETRY_SCHEDULE")
        return cls(
            dispatcher=environ.get("CAJA_DISPATCHER", "on").lower() not in {"off", "0", "false", "no"},
            concurrency=int(environ.get("CAJA_DISPATCHER_CONCURRENCY", base.concurrency)),
            per_endpoint=int(environ.get("CAJA_DISPATCHER_PER_ENDPOINT", base.per_endpoint)),
            poll_interval=number("CAJA_DISPATCHER_POLL_INTERVAL", base.poll_interval),
            lease=number("CAJA_JOB_LEASE", base.lease),
            webhook_timeout=number("CAJA_WEBHOOK_TIMEOUT", base.webhook_timeout),
            retry_schedule=parse_schedule(schedule) if schedule else base.retry_schedule,
            retry_jitter=number("CAJA_WEBHOOK_RETRY_JITTER", base.retry_jitter),
            max_retry_after=number("CAJA_WEBHOOK_MAX_RETRY_AFTER", base.max_retry_after),
            disable_after=number("CAJA_WEBHOOK_DISABLE_AFTER", base.disable_after),
            approval_timeout=number("CAJA_APPROVAL_TIMEOUT", base.approval_timeout),
            background_max_wait=number("CAJA_BACKGROUND_MAX_WAIT", base.background_max_wait),
            signing_threads=signing_threads(environ.get("CAJA_SIGNING_THREADS", "auto")),
        )


def signing_threads(value: str) -> int | None:
    """``CAJA_SIGNING_THREADS``: ``auto`` (None) or a count, 0 to sign on the event loop."""
    if value.strip().lower() == "auto":
        return None
    threads = int(value)
    if threads < 0:
        raise ValueError(f"CAJA_SIGNING_THREADS must be auto or a count >= 0, not {value!r}")
    return threads


def cash_settings_from_env(environ: Mapping[str, str]) -> CashSettings:
    base = CashSettings()

    def integer(name: str, default: int) -> int:
        return int(environ.get(name, default))

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

    @property
    def port(self) -> int:
        return self.smtp_port or _DEFAULT_SMTP_PORTS[self.smtp_security]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MailSettings:
        base = cls()
        port = environ.get("CAJA_SMTP_PORT")
        return cls(
            smtp_host=environ.get("CAJA_SMTP_HOST") or None,
            smtp_port=int(port) if port else None,
            smtp_security=SmtpSecurity(environ.get("CAJA_SMTP_SECURITY", base.smtp_security).lower()),
            smtp_username=environ.get("CAJA_SMTP_USERNAME") or None,
            smtp_password=environ.get("CAJA_SMTP_PASSWORD") or None,
            smtp_ca_file=environ.get("CAJA_SMTP_CA_FILE") or None,
            smtp_timeout=float(environ.get("CAJA_SMTP_TIMEOUT", base.smtp_timeout)),
            mail_from=environ.get("CAJA_SMTP_FROM") or base.mail_from,
            catcher=environ.get("CAJA_MAIL_CATCHER", "on").lower() not in {"off", "0", "false", "no"},
            catcher_host=environ.get("CAJA_MAIL_CATCHER_HOST", base.catcher_host),
            catcher_port=int(environ.get("CAJA_MAIL_CATCHER_PORT", base.catcher_port)),
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
    log_level: str = "info"
    log_json: bool = True
    db_pool_size: int = 20
    # Seconds an idle HTTP connection stays open. A store network keeps connections open across
    # the pauses between sales; uvicorn's own 5 s would make it reconnect after most of them.
    keep_alive: int = DEFAULT_KEEP_ALIVE
    delivery: DeliverySettings = DeliverySettings()
    mail: MailSettings = MailSettings()
    cash: CashSettings = field(default_factory=CashSettings)

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
        return replace(
            base,
            database_url=environ.get("CAJA_DATABASE_URL", base.database_url),
            host=environ.get("CAJA_HOST", base.host),
            port=int(environ.get("CAJA_PORT", base.port)),
            api_key=environ.get("CAJA_API_KEY") or None,
            public_url=environ.get("CAJA_PUBLIC_URL") or None,
            secret=environ.get("CAJA_SECRET") or None,
            previous_secret=environ.get("CAJA_SECRET_PREVIOUS") or None,
            log_level=environ.get("CAJA_LOG_LEVEL", base.log_level).lower(),
            log_json=environ.get("CAJA_LOG_FORMAT", "json").lower() != "console",
            db_pool_size=int(environ.get("CAJA_DB_POOL_SIZE", base.db_pool_size)),
            keep_alive=int(environ.get("CAJA_KEEP_ALIVE", base.keep_alive)),
            delivery=DeliverySettings.from_env(environ),
            mail=MailSettings.from_env(environ),
            cash=cash_settings_from_env(environ),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
