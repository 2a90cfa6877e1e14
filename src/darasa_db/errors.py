"""The exception hierarchy: every error darasa-db raises on purpose is a `DarasaDBError`."""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "DarasaDBError",
    "DatabaseUnavailableError",
    "MigrationError",
    "NotFoundError",
    "QueryTimeoutError",
    "StatementMismatchError",
    "TransactionConflictError",
]


class DarasaDBError(Exception):
    """Base class of the errors darasa-db raises.

    `retryable` is True when running the same call again may succeed (a lost connection, a
    serialization failure); False when it would fail the same way (bad input, a missing row).
    """

    retryable: bool = False


class ConfigurationError(DarasaDBError, ValueError):
    """The settings are missing or malformed; the message names each offending variable."""


class NotFoundError(DarasaDBError, LookupError):
    """The row does not exist, or belongs to another user (the two are indistinguishable)."""

    def __init__(self, entity: str, id: object) -> None:
        super().__init__(f"{entity} {id!s} not found")
        self.entity = entity
        self.id = id


class ConflictError(DarasaDBError):
    """A write would break a uniqueness rule, such as a second user with the same email."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DatabaseUnavailableError(DarasaDBError, ConnectionError):
    """The server cannot be reached, or the connection was lost mid-call.

    The message names host and port and the cause; it never contains the password.
    """

    retryable = True

    def __init__(
        self, host: str, port: int | str | None, cause: str, *, retryable: bool = True
    ) -> None:
        where = f"{host}:{port}" if port not in (None, "") else host
        super().__init__(f"PostgreSQL at {where} is unavailable: {cause}")
        self.host = host
        self.port = port
        self.cause = cause
        self.retryable = retryable  # False when the server answered no for good (password)


class QueryTimeoutError(DarasaDBError, TimeoutError):
    """A statement ran longer than `DatabaseSettings.statement_timeout` and was cancelled."""


class MigrationError(DarasaDBError):
    """A migration cannot run: unknown revision, or a database migrated by newer code."""


class TransactionConflictError(DarasaDBError):
    """A serialization failure, deadlock or lock timeout: the transaction was rolled back.

    Retryable: run the whole unit of work again.
    """

    retryable = True


class StatementMismatchError(DarasaDBError):
    """A result's columns are not the ones its statement returns: the connection is answering
    with another statement's results, so nothing is built from them and the connection is
    discarded. The usual cause is a transaction-mode pooler (PgBouncer) with server-side
    prepared statements on: set `DatabaseSettings(prepared_statements=False)`.
    """

    def __init__(self, expected: tuple[str, ...], got: tuple[str, ...]) -> None:
        super().__init__(
            f"the connection returned another statement's results (columns {', '.join(got)}; "
            f"expected {', '.join(expected)}): nothing was built from them and the connection "
            "was discarded. The usual cause is a transaction-mode pooler such as PgBouncer with "
            "server-side prepared statements: set DatabaseSettings(prepared_statements=False)"
        )
        self.expected = expected
        self.got = got
