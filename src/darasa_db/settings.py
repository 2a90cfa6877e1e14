"""`DatabaseSettings`: where the database is and how to talk to it."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from darasa_db.errors import ConfigurationError

__all__ = ["DatabaseSettings", "mask_password"]

_SCHEMES = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "postgresql+psycopg": "postgresql",
    "postgresql+psycopg_async": "postgresql",
    "postgresql+asyncpg": "postgresql",
    "postgresql+psycopg2": "postgresql",
}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TEST_ENV_FLAGS = (("DARASA_DB_TEST_MODE", "1"), ("APP_ENV", "test"))


def mask_password(url: str) -> str:
    """Return `url` with its password replaced by `***` (also in `password=` query options)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostinfo}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class DatabaseSettings(BaseModel):
    """How darasa-db connects: the URL, the pool, timeouts and test mode.

    `url` takes `postgres://`, `postgresql://` or `postgresql+psycopg://`; all are driven by
    psycopg 3. The password never appears in `repr()`, `str()` or validation errors.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: str = Field(description="PostgreSQL URL; the scheme is normalised to psycopg.")
    test_mode: bool | None = Field(
        default=None,
        description="At most 5 connections and no prepared statements. None detects it from "
        "PYTEST_CURRENT_TEST, DARASA_DB_TEST_MODE=1 or APP_ENV=test.",
    )
    pool_size: int = Field(default=5, ge=1, le=1000, description="Connections kept open.")
    max_overflow: int = Field(default=15, ge=0, le=1000, description="Extra connections on demand.")
    pool_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for a connection.")
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to open a connection.")
    pool_recycle: float = Field(
        default=1800.0, gt=0, description="Close connections older than this."
    )
    pool_max_idle: float = Field(default=300.0, gt=0, description="Close spare idle connections.")
    pre_ping_idle: float | None = Field(
        default=1.0,
        ge=0,
        description="Ping a connection on checkout when it sat idle longer than this many seconds "
        "(0 pings every checkout, None never).",
    )
    statement_timeout: float | None = Field(
        default=None, gt=0, description="Cancel statements running longer than this (seconds)."
    )
    lock_timeout: float | None = Field(
        default=15.0,
        gt=0,
        description="Give up waiting for a row or table lock after this many seconds "
        "(`TransactionConflictError`, retryable); None waits forever.",
    )
    prepared_statements: bool | None = Field(
        default=None,
        description="Server-side prepared statements. None: on, unless the server is reached "
        "through a connection pooler (detected at first use); False behind PgBouncer in "
        "transaction mode.",
    )
    null_pool: bool = Field(default=False, description="Open a connection per call (serverless).")
    schema_name: str = Field(default="darasa", description="Schema holding darasa-db's tables.")
    read_retries: int = Field(default=2, ge=0, le=10, description="Retries of read-only calls.")
    hnsw_ef_search: int | None = Field(
        default=None, ge=1, le=1000, description="Default `hnsw.ef_search` for similarity search."
    )
    row_level_security: bool = Field(
        default=False, description="Set `darasa.user_id` in every transaction (see operations)."
    )
    application_name: str = Field(default="darasa-db", max_length=63)
    listen_url: str | None = Field(
        default=None,
        description="Where the cache listener connects (LISTEN needs a session connection: "
        "point it past a transaction-mode PgBouncer). None uses `url`.",
    )
    replica_urls: tuple[str, ...] = Field(
        default=(),
        description="Streaming-replication replicas of `url` for reads outside transactions "
        "(see docs/scaling.md); each gets a pool of `pool_size` connections.",
    )

    @field_validator("url", "listen_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        return None if value is None else _normalise(value)

    @field_validator("replica_urls")
    @classmethod
    def _normalise_replica_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        urls = []
        for position, url in enumerate(value, 1):
            try:
                urls.append(_normalise(url))
            except ValueError as exc:
                raise ValueError(f"replica {position} of {len(value)}: {exc}") from None
        return tuple(urls)

    @field_validator("schema_name")
    @classmethod
    def _check_schema(cls, value: str) -> str:
        if not _IDENTIFIER.match(value) or value.startswith("pg_"):
            raise ValueError("schema_name must be a lower-case SQL identifier (a-z, 0-9, _)")
        return value

    # ----------------------------------------------------------------- derived
    @property
    def is_test_mode(self) -> bool:
        """True when test mode is on, explicitly or detected from the environment."""
        if self.test_mode is not None:
            return self.test_mode
        if os.environ.get("PYTEST_CURRENT_TEST"):
            return True
        return any(os.environ.get(name, "").lower() == want for name, want in _TEST_ENV_FLAGS)

    @property
    def max_connections(self) -> int:
        """Upper bound on connections one `Database` opens (5 in test mode)."""
        total = self.pool_size + self.max_overflow
        return min(total, 5) if self.is_test_mode else total

    @property
    def conninfo(self) -> str:
        """The libpq URL handed to psycopg (contains the password: never log it)."""
        return self.url

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the `postgresql+psycopg` scheme, for SQLAlchemy and Alembic."""
        return "postgresql+psycopg" + self.url[len("postgresql") :]

    @property
    def host(self) -> str:
        """The host (or socket directory) the URL points at, for messages."""
        parts = urlsplit(self.url)
        if parts.hostname:
            return parts.hostname
        match = re.search(r"host=([^&]*)", parts.query)
        return unquote(match.group(1)) if match else "localhost"

    @property
    def port(self) -> int:
        """The port the URL points at (5432 when not given)."""
        parts = urlsplit(self.url)
        try:
            if parts.port:
                return parts.port
        except ValueError:
            pass
        match = re.search(r"port=(\d+)", parts.query)
        return int(match.group(1)) if match else 5432

    @property
    def safe_url(self) -> str:
        """The URL with the password masked, safe to log."""
        return mask_password(self.url)

    def __repr__(self) -> str:
        def shown(name: str) -> object:
            value = getattr(self, name)
            if name == "replica_urls":
                return tuple(mask_password(url) for url in value)
            return mask_password(value) if name in ("url", "listen_url") and value else value

        fields = ", ".join(f"{name}={shown(name)!r}" for name in type(self).model_fields)
        return f"DatabaseSettings({fields})"

    __str__ = __repr__

    # ----------------------------------------------------------------- builders
    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> DatabaseSettings:
        """Read `DATABASE_URL`, else `DB_HOST`, `DB_PORT`, `DB_USER`, `DB_PASSWORD`, `DB_NAME`;
        and `DATABASE_REPLICA_URLS` (comma-separated).

        Raises `ConfigurationError` naming every missing or malformed variable.
        """
        env = os.environ if environ is None else environ
        url = env.get("DATABASE_URL", "").strip()
        if not url:
            url = _url_from_parts(env)
        replicas = tuple(
            p.strip() for p in env.get("DATABASE_REPLICA_URLS", "").split(",") if p.strip()
        )
        if replicas and "replica_urls" not in overrides:
            overrides["replica_urls"] = replicas
        try:
            return cls(url=url, **overrides)
        except ValueError as exc:
            source = "DATABASE_URL" if env.get("DATABASE_URL", "").strip() else "DB_* variables"
            if "replica_urls" in str(exc) and overrides.get("replica_urls") is replicas:
                source = "DATABASE_REPLICA_URLS"
            raise ConfigurationError(
                f"invalid database configuration from {source}: {exc}"
            ) from None


def _normalise(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(
            f"url must start with postgres:// or postgresql:// (got {parts.scheme or 'no'} scheme)"
        )
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("url names no host (give user@host/dbname or ?host=/socket/dir)")
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def _url_from_parts(env: Mapping[str, str]) -> str:
    required = ("DB_HOST", "DB_USER", "DB_NAME")
    missing = [name for name in required if not env.get(name, "").strip()]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    port = env.get("DB_PORT", "5432").strip() or "5432"
    if not port.isdigit() or not 0 < int(port) < 65536:
        problems.append(f"DB_PORT must be a port number 1-65535 (got {port!r})")
    if problems:
        raise ConfigurationError(
            "database is not configured: set DATABASE_URL, or DB_HOST, DB_USER and DB_NAME "
            "(DB_PORT and DB_PASSWORD optional); " + "; ".join(problems)
        )
    user = quote(env["DB_USER"].strip(), safe="")
    password = env.get("DB_PASSWORD", "")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = env["DB_HOST"].strip()
    if host.startswith("/"):
        dbname = quote(env["DB_NAME"].strip(), safe="")
        return f"postgresql://{auth}@/{dbname}?host={quote(host)}&port={port}"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"postgresql://{auth}@{host}:{port}/{quote(env['DB_NAME'].strip(), safe='')}"
