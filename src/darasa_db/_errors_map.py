"""Translation of driver errors into darasa-db's exception hierarchy."""

from __future__ import annotations

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from darasa_db.errors import (
    ConflictError,
    DarasaDBError,
    DatabaseUnavailableError,
    NotFoundError,
    QueryTimeoutError,
)
from darasa_db.settings import DatabaseSettings

__all__ = ["is_transient_read_error", "is_unstorable", "translate"]

_FK_PARENTS = {
    "fk_job_info_user_id_users": "user",
    "fk_documents_user_id_users": "user",
    "fk_conversations_user_id_users": "user",
    "fk_questions_job_info_id_job_info": "job_info",
    "fk_interviews_job_info_id_job_info": "job_info",
}
_UNIQUE_FIELDS = {"uq_users_email_key": "email", "pk_users": "id"}


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
        return DatabaseUnavailableError(settings.host, settings.port, "the Database is closed")
    if isinstance(exc, pg_errors.QueryCanceled):
        return QueryTimeoutError(f"statement cancelled: {_first_line(exc)}")
    if isinstance(exc, pg_errors.UniqueViolation):
        name = exc.diag.constraint_name or ""
        field = _UNIQUE_FIELDS.get(name)
        what = f"a user with this {field} already exists" if field else _first_line(exc)
        return ConflictError(what, field=field)
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        name = exc.diag.constraint_name or ""
        return NotFoundError(_FK_PARENTS.get(name, "parent row"), parent_id)
    if _is_transaction_conflict(exc):
        return DarasaDBError(f"transaction conflict (safe to retry): {_first_line(exc)}")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return DatabaseUnavailableError(settings.host, settings.port, _first_line(exc))
    if isinstance(exc, psycopg.Error):
        return DarasaDBError(f"database error: {_first_line(exc)}")
    if isinstance(exc, UnicodeEncodeError):  # a lone surrogate in a parameter
        return DarasaDBError("text sent to PostgreSQL must be valid Unicode (lone surrogate)")
    return None


# Connection exceptions, and a backend terminated, crashed or still starting up.
_LOST_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")


def is_transient_read_error(exc: BaseException) -> bool:
    """True for failures after which re-running a read-only call is safe and may succeed.

    A serialization failure or deadlock (SQLSTATE class 40), or a lost connection (no SQLSTATE,
    class 08, or a terminated backend). Not a cancelled statement, a full disk or the like.
    """
    if _is_transaction_conflict(exc):
        return True
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg_pool.PoolClosed):
        return False  # waiting again for a busy or closed pool only multiplies the wait
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(_LOST_CONNECTION_STATES)


def _is_transaction_conflict(exc: BaseException) -> bool:
    """A serialization failure or deadlock: SQLSTATE class 40 (psycopg has no common base)."""
    return isinstance(exc, psycopg.Error) and (exc.sqlstate or "").startswith("40")


def is_unstorable(exc: BaseException) -> bool:
    """True when a parameter could not even be sent: a NUL or a lone surrogate in a key.

    Inputs are validated before any SQL, so only lookup keys (ids, emails) get here; no stored
    row can hold such a value, so the lookup matches nothing.
    """
    if isinstance(exc, UnicodeEncodeError):
        return True
    return isinstance(exc, psycopg.DataError) and exc.sqlstate is None and "NUL" in str(exc)
