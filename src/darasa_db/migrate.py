"""Run darasa-db's bundled Alembic migrations from code.

Every function takes a URL or an SQLAlchemy `Engine`, and the schema (default `darasa`) that
holds our tables and our own version table `darasa_alembic_version`. `upgrade` holds a
PostgreSQL advisory lock while it migrates, so many processes starting at once migrate once.
"""

from __future__ import annotations

import logging
import re
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
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from darasa_db.errors import ConfigurationError, DatabaseUnavailableError, MigrationError
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
    """Alembic `on_version_apply` hook: log each revision as it is applied or undone."""
    revision = step.up_revision_id
    doc = step.revision_map.get_revision(revision).doc
    action = "applied" if step.is_upgrade else "reverted"
    logger.info("%s revision %s in schema %r: %s", action, revision, ctx.version_table_schema, doc)


def _schema_name(schema: str | None) -> str:
    name = schema or DEFAULT_SCHEMA
    try:
        DatabaseSettings(url="postgresql://localhost/x", schema_name=name)
    except ValidationError:
        raise ConfigurationError(
            f"invalid schema name {name!r}: use a lower-case SQL identifier "
            "(a-z, 0-9 and _, at most 63 characters, not starting with pg_)"
        ) from None
    return name


def _settings(url: str) -> DatabaseSettings:
    try:
        return DatabaseSettings(url=url)
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigurationError(f"invalid database URL: {reasons}") from None


@contextmanager
def _connect(target: Target, schema: str | None) -> Iterator[tuple[Connection, str]]:
    if isinstance(target, str):
        target = _settings(target)
    if isinstance(target, DatabaseSettings):
        schema = schema or target.schema_name
        engine = create_engine(
            target.sqlalchemy_url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": max(1, round(target.connect_timeout)),
                "application_name": "darasa-db migrate",
            },
        )
    else:
        engine = target
    schema = _schema_name(schema)
    try:
        try:
            connection = engine.connect()
        except OperationalError as exc:
            raise _unavailable(engine, exc) from None
        with connection:
            yield connection, schema
    finally:
        if engine is not target:
            engine.dispose()


def _unavailable(engine: Engine, exc: DBAPIError) -> DatabaseUnavailableError:
    url = engine.url
    host = url.host or str(url.query.get("host", "localhost"))
    cause = str(exc.orig or exc).strip().splitlines()[0]
    return DatabaseUnavailableError(host, url.port or 5432, cause)


_LOCK_KEY = zlib.crc32(b"darasa-db migrations")
"""One advisory lock per database: migrations of any schema, and CREATE EXTENSION, serialise."""


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
    if revision in ("head", "base", "heads") or re.fullmatch(r"[+-]\d+", revision):
        return  # relative steps are resolved by Alembic against the current revision
    try:
        found = _scripts().get_revision(revision)
    except CommandError:
        found = None
    if found is None:
        shipped = ", ".join(r.revision for r in history())
        raise MigrationError(
            f"unknown revision {revision!r}: this darasa-db ships {shipped} "
            "(or use head, base, +N, -N)"
        )


def _refuse_going_back(revision: str, current: str | None, schema: str) -> None:
    """Alembic treats an upgrade to an older revision as a no-op; we say so instead."""
    if current is None or revision in ("head", "heads") or revision[0] in "+-":
        return
    target = "base" if revision == "base" else str(_scripts().get_revision(revision).revision)
    if target == "base" or (target != current and target in _steps(current, None)):
        raise MigrationError(
            f"schema {schema!r} is at {current}, already past {revision!r}: "
            "use downgrade to go back"
        )


def _refuse_going_forward(revision: str, current: str | None, schema: str) -> None:
    """A downgrade to a revision the database has not reached yet is a mistake, not a no-op.

    A revision already reached (the current one, or base, or -N steps at base) is fine: the
    downgrade then has nothing to do.
    """
    if revision == "base" or revision[0] in "+-":
        return
    if revision in ("head", "heads"):
        target = head()
    else:
        script = _scripts().get_revision(revision)
        target = str(script.revision) if script is not None else revision
    if target != current and current in [None, *_steps(target, None)]:
        raise MigrationError(
            f"schema {schema!r} is at {current or 'base'}, below {revision!r}, which is not a "
            "valid downgrade target: use upgrade (darasa-db migrate) to go forward; "
            "nothing was changed"
        )


def _steps(upper: str | None, lower: str | None) -> list[str]:
    """Revisions strictly above `lower` up to `upper`, oldest first."""
    if upper is None or upper == lower:
        return []
    scripts = _scripts().iterate_revisions(upper, lower or "base")
    return [str(s.revision) for s in reversed(list(scripts))]


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic's own INFO chatter is noise here: we log each revision ourselves."""
    alembic_logger = logging.getLogger("alembic")
    level = alembic_logger.level
    alembic_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        alembic_logger.setLevel(level)


def _migrate(target: Target, revision: str, schema: str | None, *, up: bool) -> list[str]:
    _resolve(revision)
    with _connect(target, schema) as (connection, schema_name), _quiet_alembic():
        try:
            with connection.begin():
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
                before = _read_version(connection, schema_name)
                _known(before, schema_name)
                if up:
                    _refuse_going_back(revision, before, schema_name)
                else:
                    _refuse_going_forward(revision, before, schema_name)
                config = _config(connection, schema_name)
                if up:
                    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"'))
                    command.upgrade(config, revision)
                elif before is not None:  # at base there is nothing to revert, nor to drop
                    command.downgrade(config, revision)
                    _drop_if_empty(connection, schema_name)
                after = _read_version(connection, schema_name)
        except CommandError as exc:
            raise MigrationError(f"cannot migrate schema {schema_name!r}: {exc}") from None
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                raise _unavailable(connection.engine, exc) from None
            cause = str(exc.orig or exc).strip().splitlines()[0]
            raise MigrationError(
                f"migrating schema {schema_name!r} failed, nothing was changed: {cause}"
            ) from exc
    steps = _steps(after, before) if up else _steps(before, after)[::-1]
    if not steps:
        logger.info("schema %r is already at %s; nothing to do", schema_name, before or "base")
    return steps


def _drop_if_empty(connection: Connection, schema: str) -> None:
    """After a downgrade to base, drop our version table, and the schema if nothing is left."""
    if _read_version(connection, schema) is not None:
        return
    connection.execute(text(f'DROP TABLE IF EXISTS "{schema}".{VERSION_TABLE}'))
    try:
        with connection.begin_nested():
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}"'))
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        logger.info("schema %r still holds objects that are not ours; it was kept", schema)


def upgrade(target: Target, revision: str = "head", *, schema: str | None = None) -> list[str]:
    """Migrate up to `revision` (default head); return the revisions applied, oldest first.

    Safe to call from many processes at once: they queue on an advisory lock, and the ones
    that find the work done return `[]`.
    """
    return _migrate(target, revision, schema, up=True)


def downgrade(target: Target, revision: str, *, schema: str | None = None) -> list[str]:
    """Migrate down to `revision`; return the revisions reverted, newest first.

    `"base"` removes every object of ours (the schema too, when empty) but the extension.
    """
    return _migrate(target, revision, schema, up=False)


def current(target: Target, *, schema: str | None = None) -> str | None:
    """The revision the database is at, or None when our schema was never migrated."""
    with _connect(target, schema) as (connection, schema_name):
        return _read_version(connection, schema_name)


def check(target: Target, *, schema: str | None = None) -> bool:
    """True when the database is at this package's head revision."""
    return current(target, schema=schema) == head()
