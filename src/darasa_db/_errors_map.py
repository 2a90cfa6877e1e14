"""Translation of driver errors into darasa-db's exception hierarchy, and retry classification.

Used by the connector and the scopes, so that every statement's errors are classified in one
place. `UnknownTypeError` is raised by the rows themselves.
"""

from __future__ import annotations

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from darasa_db._compat import permanent_connect_failure
from darasa_db.errors import (
    ConflictError,
    DarasaDBError,
    DatabaseUnavailableError,
    NotFoundError,
    QueryTimeoutError,
    TransactionConflictError,
)
from darasa_db.settings import DatabaseSettings

__all__ = [
    "UnknownTypeError",
    "is_stale_plan",
    "is_stale_read",
    "is_transient_read_error",
    "translate",
]

_FK_PARENTS = {
    "fk_job_info_user_id_users": "user",
    "fk_documents_user_id_users": "user",
    "fk_conversations_user_id_users": "user",
    "fk_questions_job_info_id_job_info": "job_info",
    "fk_interviews_job_info_id_job_info": "job_info",
}
_UNIQUE_FIELDS = {"uq_users_email_key": "email", "pk_users": "id"}

# Connection exceptions (but a protocol violation), a backend terminated, crashed or starting,
# too many connections: the server or the way to it, not the statement.
_UNAVAILABLE_STATES = ("08000", "08001", "08003", "08004", "08006", "08007", "57P0", "53300")
# What a transaction-mode pooler with prepared statements produces: a protocol violation,
# "prepared statement does not exist", "prepared statement already exists".
_POOLER_STATES = ("08P01", "26000", "42P05")
# Raised before a statement runs when the schema changed under a prepared statement.
_STALE_PLAN_STATES = ("0A000",)
_NOT_MIGRATED_STATES = ("42P01", "3F000")  # undefined table, undefined schema
# Serialization failure, deadlock, lock_timeout: the transaction was rolled back, run it again.
# (Not all of class 40: 40003 "statement completion unknown" is not safe to retry.)
_CONFLICT_STATES = ("40001", "40P01", "55P03")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def translate(
    exc: BaseException, settings: DatabaseSettings, *, parent_id: object = None
) -> DarasaDBError | None:
    """The darasa-db error for a driver or pool error, or None when `exc` is not one."""
    if isinstance(exc, DarasaDBError):
        return exc
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return DatabaseUnavailableError(
            settings.host, settings.port, f"no connection within {settings.pool_timeout:g} s"
        )
    if isinstance(exc, psycopg_pool.PoolClosed):
        return DarasaDBError("this Database is closed")
    if isinstance(exc, UnicodeEncodeError):  # a lone surrogate in a parameter
        return DarasaDBError("text sent to PostgreSQL must be valid Unicode (lone surrogate)")
    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate or ""
    if isinstance(exc, pg_errors.QueryCanceled):
        return QueryTimeoutError(f"statement cancelled: {_first_line(exc)}")
    if isinstance(exc, pg_errors.UniqueViolation):
        field = _UNIQUE_FIELDS.get(exc.diag.constraint_name or "")
        what = f"a user with this {field} already exists" if field else _first_line(exc)
        return ConflictError(what, field=field)
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return NotFoundError(
            _FK_PARENTS.get(exc.diag.constraint_name or "", "parent row"), parent_id
        )
    if state in _CONFLICT_STATES:
        return TransactionConflictError(
            f"transaction conflict, rolled back (safe to retry): {_first_line(exc)}"
        )
    if is_stale_plan(exc):
        return TransactionConflictError(
            f"the schema changed under a prepared statement; rolled back (safe to retry): "
            f"{_first_line(exc)}"
        )
    if state in _POOLER_STATES:
        return DarasaDBError(
            f"connection pooler misconfiguration: {_first_line(exc)}. A transaction-mode pooler "
            "(PgBouncer) cannot keep server-side prepared statements: set "
            "DatabaseSettings(prepared_statements=False)"
        )
    if state in _NOT_MIGRATED_STATES:
        return DarasaDBError(
            f"{_first_line(exc)}: the database is not migrated for schema "
            f"{settings.schema_name!r}; run `darasa-db migrate` or darasa_db.migrate.upgrade(url)"
        )
    lost = not state or state.startswith(_UNAVAILABLE_STATES)
    if lost and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        cause = _first_line(exc)
        retryable = not permanent_connect_failure(str(exc))
        return DatabaseUnavailableError(settings.host, settings.port, cause, retryable=retryable)
    return DarasaDBError(f"database error: {_first_line(exc)}")


class UnknownTypeError(TransactionConflictError):
    """A column came back in a type its connection has not registered: the type was made again
    (pgvector dropped and installed again) under the running `Database`. Nothing is built from
    it; outside a transaction a read runs once more after its connection registers the types
    again, and a transaction's connection is replaced."""

    def __init__(self, column: str, value: object) -> None:
        super().__init__(
            f"{column} came back as {type(value).__name__}, in a type this connection does not "
            "know: the type changed under the running Database (pgvector installed again?); "
            "nothing was built from it"
        )


def is_stale_read(exc: DarasaDBError) -> bool:
    """True when a read failed only because the schema changed under it: a stale prepared plan
    (refused before running), or a column in a type its connection has not registered (nothing
    built from it). Run it again once the connection has dropped its plans and registered its
    types again."""
    return isinstance(exc, UnknownTypeError) or is_stale_plan(exc.__cause__)


def is_stale_plan(exc: BaseException | None) -> bool:
    """True for the errors a prepared statement raises, before running, after a schema change:
    "cached plan must not change result type" and "cache lookup failed for type"."""
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate or ""
    if state in _STALE_PLAN_STATES:
        return "cached plan" in str(exc)
    return state == "XX000" and "cache lookup failed for type" in str(exc)


def is_transient_read_error(exc: BaseException) -> bool:
    """True for driver failures after which re-running a read-only call is safe and may succeed.

    A serialization failure or deadlock, or a lost connection (no SQLSTATE, a connection
    exception but a protocol violation, a terminated backend). Not a cancelled statement, a full
    disk or the like, and never a pool timeout (waiting again only multiplies the wait).
    """
    if not isinstance(exc, psycopg.Error) or isinstance(
        exc, psycopg_pool.PoolTimeout | psycopg_pool.PoolClosed
    ):
        return False  # (PoolTimeout and PoolClosed are psycopg errors without a SQLSTATE)
    state = exc.sqlstate or ""
    if state in ("40001", "40P01"):
        return True
    return isinstance(exc, psycopg.OperationalError) and (
        not state or state.startswith(_UNAVAILABLE_STATES)
    )
