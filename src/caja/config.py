"""Settings: read once, from the command line and the environment, by the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

DEFAULT_DATABASE_URL = "sqlite:///caja.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8300


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
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
