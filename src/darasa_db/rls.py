"""Opt-in PostgreSQL row-level security on darasa-db's tables.

Migration 0002 creates policies keyed on the transaction-local setting `darasa.user_id`; they
take effect once row-level security is enabled here. With `DatabaseSettings(row_level_security=
True)` the repositories set `darasa.user_id` (and `darasa.email` for `get_by_email`) in every
transaction. Table owners and superusers bypass the policies unless `force=True`.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from darasa_db.errors import MigrationError
from darasa_db.migrate import Target, _connect

__all__ = ["OWNED_TABLES", "disable", "enable", "status"]

OWNED_TABLES = ("users", "job_info", "questions", "interviews", "documents", "conversations")
"""The tables that carry row-level security policies (migrations 0002 and 0005)."""


def _alter(connection: Connection, schema: str, clauses: tuple[str, ...]) -> None:
    missing = [
        table
        for table in OWNED_TABLES
        if connection.execute(text("SELECT to_regclass(:n)"), {"n": f'"{schema}".{table}'}).scalar()
        is None
    ]
    if missing:
        raise MigrationError(
            f"schema {schema!r} is not migrated (missing {', '.join(missing)}): "
            "run darasa_db.migrate.upgrade first"
        )
    for table in OWNED_TABLES:
        for clause in clauses:
            connection.execute(text(f'ALTER TABLE "{schema}"."{table}" {clause}'))


def enable(target: Target, *, schema: str | None = None, force: bool = False) -> None:
    """Turn row-level security on for every owned table (`force` applies it to owners too)."""
    clauses = ("ENABLE ROW LEVEL SECURITY",) + (("FORCE ROW LEVEL SECURITY",) if force else ())
    with _connect(target, schema) as (connection, schema_name), connection.begin():
        _alter(connection, schema_name, clauses)


def disable(target: Target, *, schema: str | None = None) -> None:
    """Turn row-level security off again (the policies stay, inert)."""
    clauses = ("NO FORCE ROW LEVEL SECURITY", "DISABLE ROW LEVEL SECURITY")
    with _connect(target, schema) as (connection, schema_name), connection.begin():
        _alter(connection, schema_name, clauses)


def status(target: Target, *, schema: str | None = None) -> dict[str, bool]:
    """Whether row-level security is enabled, per owned table."""
    with _connect(target, schema) as (connection, schema_name):
        rows = connection.execute(
            text(
                "SELECT c.relname, c.relrowsecurity FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relname = ANY(:t)"
            ),
            {"s": schema_name, "t": list(OWNED_TABLES)},
        ).all()
    return {name: bool(enabled) for name, enabled in rows}
