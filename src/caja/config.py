"""Settings: read once, from the command line and the environment, by the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from caja.domain.jobs import DEFAULT_DISABLE_AFTER, DEFAULT_MAX_RETRY_AFTER, SVIX_SCHEDULE, parse_schedule

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
        )


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
    log_level: str = "info"
    log_json: bool = True
    db_pool_size: int = 10
    delivery: DeliverySettings = DeliverySettings()

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
            log_level=environ.get("CAJA_LOG_LEVEL", base.log_level).lower(),
            log_json=environ.get("CAJA_LOG_FORMAT", "json").lower() != "console",
            db_pool_size=int(environ.get("CAJA_DB_POOL_SIZE", base.db_pool_size)),
            delivery=DeliverySettings.from_env(environ),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
