"""The HNSW index on the documents' embeddings: dropped before an initial bulk load, then built
once, exactly as the migrations define it.

Loading a large corpus into `documents` without the index and building the index afterwards
is several times faster than loading through the live index (docs/performance.md). `drop` and
`build` do it without leaving the schema in a state the migrations do not expect: `build`
makes the index the migrations make on this server's pgvector (half precision from 0.7, full
precision before), under the same name, so that later migrations, the drift check and
`similarity_search`'s plans find it. While it is missing, searches stay correct (an exact
scan of the caller's documents) but slow down with their number.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from darasa_db.errors import ConfigurationError, MigrationError
from darasa_db.migrate import _LOCK_KEY, Target, _connect, _read_version, head

__all__ = ["INDEX", "IndexState", "build", "drop", "status"]

INDEX = "ix_documents_embedding_hnsw"
"""The index's name, as migrations 0001 and 0004 create it."""
_FULL = "(embedding vector_cosine_ops)"  # the expressions of migrations 0001 and 0004
_HALF = "((embedding::halfvec(1536)) halfvec_cosine_ops)"
_HALFVEC_FROM = (0, 7)  # as migration 0004 and `similarity_search` decide

IndexState = Literal["valid", "missing", "building", "invalid", "outdated"]
"""`valid`: the index the search uses on this pgvector; `missing`; `building`: a
`CREATE INDEX CONCURRENTLY` of it is running; `invalid`: left unusable by a failed one;
`outdated`: the other precision's (pgvector upgraded since the index was built)."""


def status(target: Target, *, schema: str | None = None) -> IndexState:
    """The state of the embeddings index of `schema`."""
    with _connect(target, schema) as (connection, schema_name):
        _require_head(connection, schema_name)
        return _state(connection, schema_name)


def drop(target: Target, *, schema: str | None = None) -> bool:
    """Drop the index (before an initial bulk load); False when there was none. `documents` is
    locked meanwhile, reads and writes wait: a moment, dropping does not scan the table."""
    with _connect(target, schema) as (connection, schema_name), connection.begin():
        _require_head(connection, schema_name)
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        existed = _state(connection, schema_name) != "missing"
        connection.execute(text(f'DROP INDEX IF EXISTS "{schema_name}".{INDEX}'))
    return existed


def build(
    target: Target,
    *,
    schema: str | None = None,
    maintenance_work_mem: str | None = None,
    concurrently: bool = False,
) -> bool:
    """Build the index the migrations define for this server's pgvector, replacing an invalid
    or outdated one, then `ANALYZE` the table; False when the right index was already there.

    `maintenance_work_mem` (e.g. `"2GB"`) is set for this session only: give it at least the
    graph's size (about 4 kB per document at half precision, 8 kB at full). `concurrently`
    lets writes go on during the build, which then takes longer. The session has no statement
    timeout: a build of millions of documents takes a while. Migrations (`migrate.upgrade`)
    and other builds wait for it (the migrations' advisory lock).
    """
    with _connect(target, schema) as (connection, schema_name):
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        _require_head(connection, schema_name)
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        try:
            return _build(connection, schema_name, maintenance_work_mem, concurrently)
        finally:  # the session may be a pooled connection of the host's own Engine
            for statement in (
                "RESET statement_timeout",
                "RESET maintenance_work_mem",
                f"SELECT pg_advisory_unlock({_LOCK_KEY})",
            ):
                connection.execute(text(statement))


def _build(
    connection: Connection, schema: str, maintenance_work_mem: str | None, concurrently: bool
) -> bool:
    state = _state(connection, schema)
    if state == "valid":
        return False
    if state == "building":
        raise MigrationError(
            f"{INDEX} is being built by another session (CREATE INDEX CONCURRENTLY); "
            "nothing was changed"
        )
    connection.execute(text("SET statement_timeout = 0"))
    if maintenance_work_mem is not None:
        _set_work_mem(connection, maintenance_work_mem)
    how = "CONCURRENTLY " if concurrently else ""
    expression = _HALF if _pgvector(connection) >= _HALFVEC_FROM else _FULL
    statements = [f'CREATE INDEX {how}{INDEX} ON "{schema}".documents USING hnsw {expression}']
    if state != "missing":
        statements.insert(0, f'DROP INDEX {how}IF EXISTS "{schema}".{INDEX}')
    try:
        for statement in (*statements, f'ANALYZE "{schema}".documents'):
            connection.execute(text(statement))
    except DBAPIError as exc:
        cause = str(exc.orig or exc).strip().splitlines()[0]
        left = ""
        if _state(connection, schema) == "invalid":
            left = "; an invalid index remains (writes still update it): build again or drop"
        raise MigrationError(f"building {INDEX} failed: {cause}{left}") from exc
    return True


def _require_head(connection: Connection, schema: str) -> None:
    at = _read_version(connection, schema)
    if at != head():
        raise MigrationError(
            f"schema {schema!r} is at revision {at or 'base'}, not {head()}: "
            "run darasa_db.migrate.upgrade first; nothing was changed"
        )


def _state(connection: Connection, schema: str) -> IndexState:
    found = connection.execute(
        text(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid), EXISTS (SELECT 1 FROM "
            "pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s AND c.relname = :i"
        ),
        {"s": schema, "i": INDEX},
    ).first()
    if found is None:
        return "missing"
    valid, definition, building = found
    if not valid:
        return "building" if building else "invalid"
    half = "halfvec_cosine_ops" in definition
    return "valid" if half == (_pgvector(connection) >= _HALFVEC_FROM) else "outdated"


def _pgvector(connection: Connection) -> tuple[int, ...]:
    version = connection.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    ).scalar()
    return tuple(int(p) for p in str(version or "0").split(".")[:2])


def _set_work_mem(connection: Connection, value: str) -> None:
    try:
        connection.execute(
            text("SELECT set_config('maintenance_work_mem', :v, false)"), {"v": value}
        )
    except DBAPIError as exc:
        cause = str(exc.orig or exc).strip().splitlines()[0]
        raise ConfigurationError(
            f"invalid maintenance_work_mem {value!r}: {cause}; nothing was built"
        ) from None
