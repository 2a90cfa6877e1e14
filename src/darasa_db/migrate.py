"""Run darasa-db's bundled Alembic migrations from code.

Every function takes a URL or an SQLAlchemy `Engine`, and the schema (default `darasa`) that
holds our tables and our own version table `darasa_alembic_version`. `upgrade` holds a
PostgreSQL advisory lock while it migrates, so many processes starting at once migrate once.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from darasa_db.errors import DatabaseUnavailableError, MigrationError
from darasa_db.models.base import DEFAULT_SCHEMA
from darasa_db.settings import DatabaseSettings

__all__ = [
    "VERSION_TABLE",
    "Revision",
    "check",
    "current",
    "downgrade",
    "head",
    "history",
    "script_location",
    "upgrade",
]

VERSION_TABLE = "darasa_alembic_version"
"""Our version table, inside our schema: a host's own `alembic_version` is never touched."""

logger = logging.getLogger("darasa_db.migrate")

Target = str | Engine | DatabaseSettings


@dataclass(frozen=True)
class Revision:
    """One bundled migration."""

    revision: str
    down_revision: str | None
    doc: str


def script_location() -> Path:
    """The bundled script directory: inside the installed wheel, or `migrations/` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_migrations", here.parent.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationError(f"darasa-db's migration scripts are missing (looked beside {here})")


def _config(connection: Connection | None = None, schema: str = DEFAULT_SCHEMA) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this package ships."""
    heads = _scripts().get_heads()
    if len(heads) != 1:
        raise MigrationError(f"expected one head revision, found {heads}")
    return heads[0]


def history() -> list[Revision]:
    """The bundled revisions, oldest first."""
    revisions = [
        Revision(
            str(s.revision),
            s.down_revision if isinstance(s.down_revision, str) else None,
            (s.doc or "").strip(),
        )
        for s in _scripts().walk_revisions()
    ]
    return list(reversed(revisions))


def log_applied(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    """Alembic `on_version_apply` hook: log each revision as it is applied."""
    script = step.revision_map.get_revision(step.up_revision_id)
    if step.is_upgrade:
        logger.info("darasa-db migration: upgraded to %s (%s)", step.up_revision_id, script.doc)
    else:
        logger.info("darasa-db migration: downgraded from %s (%s)", step.up_revision_id, script.doc)


@contextmanager
def _connect(target: Target, schema: str | None) -> Iterator[tuple[Connection, str]]:
    if isinstance(target, DatabaseSettings):
        schema = schema or target.schema_name
        target = target.sqlalchemy_url
    schema = schema or DEFAULT_SCHEMA
    DatabaseSettings(url="postgresql://x/y", schema_name=schema)  # validates the schema name
    owned = not isinstance(target, Engine)
    engine = (
        create_engine(DatabaseSettings(url=target).sqlalchemy_url, poolclass=None)
        if isinstance(target, str)
        else target
    )
    assert isinstance(engine, Engine)
    try:
        try:
            connection = engine.connect()
        except OperationalError as exc:
            url = engine.url
            cause = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailableError(url.host or "localhost", url.port, cause) from None
        with connection:
            yield connection, schema
    finally:
        if owned:
            engine.dispose()


def _lock_key(schema: str) -> int:
    return zlib.crc32(f"darasa-db migrations {schema}".encode())


def _read_version(connection: Connection, schema: str) -> str | None:
    exists = connection.execute(
        text("SELECT to_regclass(:name)"), {"name": f'"{schema}".{VERSION_TABLE}'}
    ).scalar()
    if exists is None:
        return None
    rows = connection.execute(text(f'SELECT version_num FROM "{schema}".{VERSION_TABLE}')).scalars()
    versions = list(rows)
    if len(versions) > 1:
        raise MigrationError(f"schema {schema!r} has several heads recorded: {versions}")
    return versions[0] if versions else None


def _known(revision: str | None, schema: str) -> None:
    if revision is None:
        return
    try:
        _scripts().get_revision(revision)
    except CommandError:
        raise MigrationError(
            f"schema {schema!r} is at revision {revision!r}, which this darasa-db does not ship "
            "(was it migrated by a newer version?); nothing was changed"
        ) from None


def _resolve(revision: str) -> None:
    if revision in ("head", "base", "heads"):
        return
    try:
        found = _scripts().get_revision(revision)
    except CommandError as exc:
        raise MigrationError(f"unknown revision {revision!r}: {exc}") from None
    if found is None:
        raise MigrationError(f"unknown revision {revision!r}")


def _migrate(target: Target, revision: str, schema: str | None, *, up: bool) -> None:
    _resolve(revision)
    with _connect(target, schema) as (connection, schema_name):
        try:
            with connection.begin():
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(schema_name)}
                )
                _known(_read_version(connection, schema_name), schema_name)
                config = _config(connection, schema_name)
                if up:
                    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"'))
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
                    _drop_if_empty(connection, schema_name)
        except CommandError as exc:
            raise MigrationError(str(exc)) from None
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                url = connection.engine.url
                raise DatabaseUnavailableError(
                    url.host or "localhost", url.port, str(exc.orig)
                ) from None
            raise


def _drop_if_empty(connection: Connection, schema: str) -> None:
    """After a downgrade to base, drop our version table, and the schema if it is empty."""
    if _read_version(connection, schema) is not None:
        return
    connection.execute(text(f'DROP TABLE IF EXISTS "{schema}".{VERSION_TABLE}'))
    left = connection.execute(
        text(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s"
        ),
        {"s": schema},
    ).scalar()
    if not left:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}"'))


def upgrade(target: Target, revision: str = "head", *, schema: str | None = None) -> None:
    """Migrate up to `revision` (default head). Safe to call from many processes at once."""
    _migrate(target, revision, schema, up=True)


def downgrade(target: Target, revision: str, *, schema: str | None = None) -> None:
    """Migrate down to `revision` (`"base"` removes every object of ours but the extension)."""
    _migrate(target, revision, schema, up=False)


def current(target: Target, *, schema: str | None = None) -> str | None:
    """The revision the database is at, or None when our schema was never migrated."""
    with _connect(target, schema) as (connection, schema_name):
        return _read_version(connection, schema_name)


def check(target: Target, *, schema: str | None = None) -> bool:
    """True when the database is at this package's head revision."""
    return current(target, schema=schema) == head()
