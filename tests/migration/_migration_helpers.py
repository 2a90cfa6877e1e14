"""Helpers of the migration tests: catalog snapshots, the autogenerate comparison, workers."""

from __future__ import annotations

from typing import Any

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from darasa_db import migrate
from darasa_db.models import metadata
from darasa_db.settings import DatabaseSettings

ENUMS = ("job_infos_experience_level", "questions_question_difficulty")
TABLES = {"users", "job_info", "questions", "interviews", "documents", "conversations"}


def rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """All rows of `query` on `url` (none for a statement that returns no rows)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params or None)
        return cursor.fetchall() if cursor.description else []


def our_objects(url: str, schema: str = "darasa") -> dict[str, list[str]]:
    """Every object darasa-db may have made for `schema`, by kind; empty lists when none."""
    return {
        "schema": [
            r[0] for r in rows(url, "SELECT nspname FROM pg_namespace WHERE nspname = %s", schema)
        ],
        "relations": sorted(
            r[0]
            for r in rows(
                url,
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s OR c.relname = %s",
                schema,
                migrate.VERSION_TABLE,
            )
        ),
        "types": sorted(
            r[0]
            for r in rows(url, "SELECT typname FROM pg_type WHERE typname = ANY(%s)", list(ENUMS))
        ),
        "functions": sorted(
            r[0]
            for r in rows(
                url,
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = %s OR p.proname = 'set_updated_at'",
                schema,
            )
        ),
        "policies": sorted(
            r[0]
            for r in rows(url, "SELECT policyname FROM pg_policies WHERE schemaname = %s", schema)
        ),
    }


def tables_in(url: str, schema: str) -> set[str]:
    """Names of the ordinary tables in `schema`."""
    return {
        r[0] for r in rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = %s", schema)
    }


EMBEDDING_INDEX = "ix_documents_embedding_hnsw"
"""Left out of the comparison: its expression depends on the server's pgvector (half precision
from 0.7, see migration 0004), which Alembic compares differently from one release to the next
(1.13 reports it, recent ones skip expression indexes); test_migration_drift checks it itself."""


def autogenerate_diff(url: str, schema: str = "darasa") -> list[Any]:
    """`compare_metadata` between the models and the database, configured like migrations/env.py."""

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        if type_ == "schema":
            return name == schema
        if type_ == "index" and name == EMBEDDING_INDEX:
            return False
        return not (type_ == "table" and name == migrate.VERSION_TABLE)

    def include_object(
        obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
    ) -> bool:
        return not (type_ == "index" and name == EMBEDDING_INDEX)

    # With search_path left alone, a role named like our schema ("$user") makes it the default
    # schema, which Alembic reflects as schema None; pin the default elsewhere.
    engine = create_engine(
        DatabaseSettings(url=url).sqlalchemy_url,
        poolclass=NullPool,
        connect_args={"options": "-c search_path=public"},
    )
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_schemas": True,
                    "include_name": include_name,
                    "include_object": include_object,
                    "version_table": migrate.VERSION_TABLE,
                    "version_table_schema": schema,
                    "compare_type": True,
                },
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def upgrade_when_all_ready(url: str, barrier: Any, results: Any) -> None:
    """Process body: wait for every sibling, then `migrate.upgrade`; report what it applied."""
    barrier.wait(timeout=120)
    try:
        results.put(("ok", migrate.upgrade(url)))
    except Exception as exc:  # reported to the parent, which asserts on it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
