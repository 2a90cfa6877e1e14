"""Opt-in PostgreSQL row-level security on darasa-db's tables.

Migration 0002 creates policies keyed on the transaction-local setting `darasa.user_id`; they
take effect once row-level security is enabled here. With `DatabaseSettings(row_level_security=
True)` the repositories set `darasa.user_id` (and `darasa.email` for `get_by_email`) in every
transaction. Table owners and superusers bypass the policies unless `force=True`.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text

from darasa_db.errors import MigrationError
from darasa_db.models.base import DEFAULT_SCHEMA
from darasa_db.settings import DatabaseSettings

__all__ = ["OWNED_TABLES", "disable", "enable", "status"]

OWNED_TABLES = ("users", "job_info", "questions", "interviews", "documents", "conversations")


def _engine(target: str | Engine) -> tuple[Engine, bool]:
    if isinstance(target, Engine):
        return target, False
    return create_engine(DatabaseSettings(url=target).sqlalchemy_url), True


def _alter(target: str | Engine, schema: str, clause: str) -> None:
    DatabaseSettings(url="postgresql://x/y", schema_name=schema)  # validates the schema name
    engine, owned = _engine(target)
    try:
        with engine.begin() as conn:
            missing = [
                t
                for t in OWNED_TABLES
                if conn.execute(text("SELECT to_regclass(:n)"), {"n": f'"{schema}".{t}'}).scalar()
                is None
            ]
            if missing:
                raise MigrationError(
                    f"schema {schema!r} is not migrated (missing {', '.join(missing)}): "
                    "run darasa_db.migrate.upgrade first"
                )
            for table in OWNED_TABLES:
                conn.execute(text(f'ALTER TABLE "{schema}"."{table}" {clause}'))
    finally:
        if owned:
            engine.dispose()


def enable(target: str | Engine, *, schema: str = DEFAULT_SCHEMA, force: bool = False) -> None:
    """Turn row-level security on for every owned table (`force` applies it to the owner too)."""
    _alter(target, schema, "ENABLE ROW LEVEL SECURITY")
    if force:
        _alter(target, schema, "FORCE ROW LEVEL SECURITY")


def disable(target: str | Engine, *, schema: str = DEFAULT_SCHEMA) -> None:
    """Turn row-level security off again (the policies stay, inert)."""
    _alter(target, schema, "NO FORCE ROW LEVEL SECURITY")
    _alter(target, schema, "DISABLE ROW LEVEL SECURITY")


def status(target: str | Engine, *, schema: str = DEFAULT_SCHEMA) -> dict[str, bool]:
    """Whether row-level security is enabled, per owned table."""
    engine, owned = _engine(target)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :s AND c.relname = ANY(:t)"
                ),
                {"s": schema, "t": list(OWNED_TABLES)},
            ).all()
        return {name: bool(enabled) for name, enabled in rows}
    finally:
        if owned:
            engine.dispose()
