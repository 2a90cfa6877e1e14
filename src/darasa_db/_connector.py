"""The connector: the pool and the event loop it lives on, connections borrowed safely under
cancellation, compiled statements, type registration and error translation.

Each of these is done here and nowhere else. Nothing here knows the repositories or the cache.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import types
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar, cast

import psycopg
import psycopg_pool
from psycopg.pq import TransactionStatus
from psycopg.rows import AsyncRowFactory
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.sql import ClauseElement

from darasa_db._compat import (
    LifoConnectionPool,
    quiet_cancelled_connects,
    register_vector_info,
)
from darasa_db._errors_map import translate
from darasa_db.errors import DarasaDBError
from darasa_db.models.base import DEFAULT_SCHEMA
from darasa_db.settings import DatabaseSettings

__all__ = [
    "Borrowed",
    "Connector",
    "Pool",
    "PooledConnection",
    "complete",
    "forget_cursors",
    "rows_of",
]

logger = logging.getLogger("darasa_db")
Pool = psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]
T = TypeVar("T")
_DIALECT = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]
_IN_TRANSACTION = (TransactionStatus.INTRANS, TransactionStatus.INERROR)
_POOL_PREFIX = "darasa-db-"
_DRIVER_ERRORS = (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed)
_KEPT_INPUT = 65_536  # characters or bytes of one input past which a call keeps no cursor
quiet_cancelled_connects(_POOL_PREFIX)


async def complete(work: Coroutine[Any, Any, T], *, absorb_cancel: bool = False) -> T:
    """Run `work` to its end even when the caller is cancelled meanwhile, for the steps that
    must not be cut in half (returning a connection, a COMMIT). A cancellation that arrived is
    raised afterwards, or dropped with `absorb_cancel` (the work's outcome stands).

    `work` starts in the caller's task, and usually ends there without waiting for anything:
    then nothing could have interrupted it, and no task is needed. Only when it has to wait is
    the rest handed to a task of its own, shielded from the caller's cancellation.
    """
    try:
        waiting_on = work.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    task = asyncio.ensure_future(_resume(work, waiting_on))
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.cancelled():  # the task itself was cancelled (the event loop is ending)
                raise
            cancelled = exc
    result = task.result()
    if cancelled is not None and not absorb_cancel:
        raise cancelled
    return result


@types.coroutine
def _resumed(work: Coroutine[Any, Any, T], waiting_on: Any) -> Generator[Any, Any, T]:
    """Go on driving `work`, a coroutine that already handed `waiting_on` to the event loop."""
    while True:
        try:
            sent = yield waiting_on
        except BaseException as exc:  # delivered into `work` where it waits, as a task would
            try:
                waiting_on = work.throw(exc)
            except StopIteration as done:
                return cast(T, done.value)
        else:
            try:
                waiting_on = work.send(sent)
            except StopIteration as done:
                return cast(T, done.value)


async def _resume(work: Coroutine[Any, Any, T], waiting_on: Any) -> T:
    return await _resumed(work, waiting_on)


class PooledConnection(psycopg.AsyncConnection[Any]):
    """A pooled connection that keeps a cursor for each darasa-db statement it runs.

    A new psycopg cursor sets up its adapters, and a loader for each column of its result, on
    every call (about 20 µs of CPU for a row of eight columns); a kept cursor running the same
    statement again reuses them (`rows_of`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: dict[tuple[bytes, object, bool], psycopg.AsyncCursor[Any]] = {}
        """The cursors kept, by statement, row factory and binary format."""
        self.returned_at: float | None = None
        """When it last came back to the pool (`time.monotonic()`), for `pre_ping_idle`."""

    async def close(self) -> None:
        """Close the connection and drop its cursors (each refers back to it)."""
        self.kept.clear()
        await super().close()


async def rows_of(
    conn: psycopg.AsyncConnection[Any],
    statement: bytes,
    params: dict[str, Any],
    factory: AsyncRowFactory[T],
    binary: bool = False,
) -> list[T]:
    """The rows of `statement` run on `conn`, made by `factory`, on the cursor `conn` keeps for
    them when it is a `PooledConnection`.

    Nothing of the result stays in memory between calls (its `PGresult` is cleared), and a
    call with a long text or JSON input does not keep its cursor (which would hold the input
    until the statement runs again). A call that fails keeps nothing either."""
    if not isinstance(conn, PooledConnection):
        cur = conn.cursor(row_factory=factory, binary=binary)
        await cur.execute(statement, params)
        return await cur.fetchall()
    key = (statement, factory, binary)
    kept = conn.kept.pop(key, None)  # (put back only once the call succeeded)
    if kept is None:  # (not `conn.cursor()`: a host may have changed its cursor_factory)
        kept = psycopg.AsyncCursor(conn, row_factory=factory)
    await kept.execute(statement, params, binary=binary)
    rows: list[T] = await kept.fetchall()
    result = kept.pgresult
    if result is not None:  # (the rows hold copies: psycopg's loaders and ours copy values out)
        result.clear()
    if _short_inputs(params):
        conn.kept[key] = kept
    return rows


def _short_inputs(params: dict[str, Any]) -> bool:
    """False when a text or JSON input is longer than `_KEPT_INPUT` characters or bytes."""
    for value in params.values():
        if isinstance(value, Jsonb):
            value = value.obj
        if isinstance(value, str | bytes) and len(value) > _KEPT_INPUT:
            return False
    return True


def forget_cursors(conn: psycopg.AsyncConnection[Any]) -> None:
    """Drop the cursors `conn` keeps: they hold its adapters as they were when made (call it
    before registering types on `conn` again, or when closing it)."""
    if isinstance(conn, PooledConnection):
        conn.kept.clear()


class Connector:
    """Borrows connections from a lazily opened psycopg pool bound to one event loop.

    A call from another event loop reopens the pool there when the first loop has ended (its
    connections are closed without it); while that loop still runs (another thread), it raises.
    When the loop that opened the pool ends (`asyncio.run` returning), the pool is closed, so a
    program that never calls `close()` still exits promptly.
    """

    def __init__(self, settings: DatabaseSettings, *, reserved: int = 0) -> None:
        self.settings = settings
        self.test_mode = settings.is_test_mode
        """Decided once, at construction: at most 5 connections, no prepared statements."""
        self.schema = settings.schema_name
        self.max_connections = settings.max_connections
        """Connections the owner may hold at once; `reserved` of them are not the pool's."""
        self.pool_size = max(1, self.max_connections - reserved)
        self.pgvector_version: tuple[int, ...] | None = None
        """The server's pgvector version, known after the first connection."""
        self.behind_pooler: bool | None = None
        """True when a pooler sits between us and PostgreSQL, known after the first connection."""
        self._pool: Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: asyncio.Task[None] | None = None
        self._opening: asyncio.Lock | None = None
        self._binding = threading.Lock()
        self._options = ""
        self._statements: dict[Callable[[], Executable], bytes] = {}
        self._connections: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()
        self.closed = False

    # ------------------------------------------------------------------ settings
    @property
    def prepare_threshold(self) -> int | None:
        """psycopg's `prepare_threshold`: 0 prepares every statement, None never."""
        wanted = self.settings.prepared_statements
        if self.test_mode or wanted is False or (wanted is None and self.behind_pooler):
            return None
        return 0

    def connect_kwargs(self, *, options: bool = True) -> dict[str, Any]:
        """Keyword arguments of `psycopg.AsyncConnection.connect` (with the server options)."""
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(self.settings.connect_timeout)),
            "application_name": self.settings.application_name,
        }
        if options and self._options:
            kwargs["options"] = self._options
        return kwargs

    def _server_options(self) -> str:
        """`-c` options for pool connections. Behind a pooler only those set explicitly (a
        pooler such as PgBouncer refuses the `options` startup parameter by default)."""
        s = self.settings
        explicit = s.model_fields_set
        wanted = {
            "statement_timeout": _ms(s.statement_timeout),
            "lock_timeout": _ms(s.lock_timeout),
            "hnsw.ef_search": s.hnsw_ef_search,
        }
        names = {"hnsw.ef_search": "hnsw_ef_search"}
        options = [
            f"-c {name}={value}"
            for name, value in wanted.items()
            if value is not None and (not self.behind_pooler or names.get(name, name) in explicit)
        ]
        return " ".join(options)

    # ------------------------------------------------------------------ connections
    async def pool(self) -> Pool:
        """The pool on the running event loop, opened on first use; `DatabaseUnavailableError`
        when the server cannot be reached."""
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self.closed:
            raise self._closed_error()
        with self._binding:  # first use from two threads at once: one loop wins, the other raises
            if self._loop is not loop:
                if self._loop is not None:
                    self._abandon()
                self._loop, self._opening = loop, asyncio.Lock()
        assert self._opening is not None
        async with self._opening:
            if self._pool is None:
                pool = await self._open()
                if self.closed:  # close() ran while the pool was opening
                    await pool.close()
                    raise self._closed_error()
                self._pool = pool
                self._guard = loop.create_task(self._close_with_loop(pool), name="darasa-db-pool")
        return self._pool

    async def _open(self) -> Pool:
        s = self.settings
        await self._probe()
        self._options = self._server_options()
        common: dict[str, Any] = {
            "kwargs": self.connect_kwargs(),
            "connection_class": PooledConnection,
            "configure": self._configure,
            "check": self._check,
            "timeout": s.pool_timeout,
            "max_lifetime": s.pool_recycle,
            "max_idle": s.pool_max_idle,
            "reconnect_timeout": max(s.pool_timeout, 30.0),
            "name": f"{_POOL_PREFIX}{id(self):x}",
            "open": False,
        }
        pool: Pool
        if s.null_pool:
            pool = psycopg_pool.AsyncNullConnectionPool(
                s.conninfo, max_size=self.pool_size, **common
            )
        else:
            min_size = 1 if self.test_mode else min(s.pool_size, self.pool_size)
            pool = LifoConnectionPool(
                s.conninfo, min_size=min_size, max_size=self.pool_size, **common
            )
        await pool.open(wait=False)
        return pool

    async def _probe(self) -> None:
        """Connect once directly: an unreachable server fails fast with its real cause, and we
        learn whether a pooler is in between and which pgvector the server has."""
        conn = await self.connect()
        async with conn:
            cur = await conn.execute("SELECT pg_backend_pid()")
            row = await cur.fetchone()
            # A pooler answers the startup with its own cancel key, not the server's pid.
            self.behind_pooler = row is not None and row[0] != conn.info.backend_pid
            await self.register_vector(conn)
        if self.behind_pooler and self.settings.prepared_statements is None:
            logger.warning(
                "darasa-db: %s is reached through a connection pooler: server-side prepared "
                "statements are off (set prepared_statements=True for a session-mode pooler, "
                "or False to silence this)",
                self.settings.safe_url,
            )
        elif self.behind_pooler and self.settings.prepared_statements and not self.test_mode:
            logger.warning(
                "darasa-db: %s is reached through a connection pooler with "
                "prepared_statements=True: safe only in session mode or with protocol-level "
                "prepared statements (PgBouncer >= 1.22, max_prepared_statements); in transaction "
                "mode without them other clients' statements run with your parameters",
                self.settings.safe_url,
            )

    async def connect(self, url: str | None = None) -> psycopg.AsyncConnection[Any]:
        """A session connection of its own, outside the pool (autocommit, no prepared
        statements); driver errors become darasa-db errors."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                url or self.settings.conninfo, **self.connect_kwargs(options=False)
            )
        except psycopg.Error as exc:
            error = self.translate(exc)
            logger.warning("darasa-db cannot connect to %s: %s", self.settings.safe_url, error)
            raise error from None
        conn.prepare_threshold = None
        return conn

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._connections.add(conn)
        await self.register_vector(conn)  # before prepared statements: nothing left behind
        conn.prepare_threshold = self.prepare_threshold

    async def _check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        idle = self.settings.pre_ping_idle
        if idle is None:
            return
        returned = conn.returned_at if isinstance(conn, PooledConnection) else None
        if returned is None or time.monotonic() - returned >= idle:
            await conn.execute("")

    async def register_vector(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Teach `conn` pgvector's binary format; False when the extension is not installed."""
        info = await TypeInfo.fetch(conn, "vector")
        if info is None:
            return False
        forget_cursors(conn)  # they would keep the adapters as they were
        register_vector_info(conn, info)
        if self.pgvector_version is None:
            cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = await cur.fetchone()
            self.pgvector_version = tuple(int(p) for p in str(row[0]).split(".")) if row else (0,)
        return True

    def connection(self) -> Borrowed:
        """Borrow a pooled connection (autocommit): `async with connector.connection() as conn`.

        Driver errors become darasa-db errors. Returning it completes whatever cancellation
        arrives; a transaction it was left in is rolled back first (committed when the block
        succeeded, as psycopg's own pool does).
        """
        return Borrowed(self)

    async def _return(self, pool: Pool, conn: psycopg.AsyncConnection[Any]) -> None:
        if isinstance(conn, PooledConnection):
            conn.returned_at = time.monotonic()
        if conn.pgconn.transaction_status in _IN_TRANSACTION:
            try:
                await conn.rollback()
            except psycopg.Error as exc:
                logger.warning("darasa-db: rollback on return failed: %s", exc)
        await pool.putconn(conn)

    def stats(self) -> dict[str, int]:
        """The pool's counters (psycopg_pool's `get_stats()`); empty before it opens."""
        pool = self._pool
        return pool.get_stats() if pool is not None else {}

    def share_statements(self, other: Connector) -> None:
        """Use `other`'s compiled statements (same schema): each is compiled once."""
        self._statements = other._statements

    def discard(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Close `conn` now; the pool replaces it when it comes back."""
        forget_cursors(conn)
        conn.pgconn.finish()

    # ------------------------------------------------------------------ statements, errors
    def sql(self, build: Callable[[], Executable]) -> bytes:
        """The SQL text of the statement `build()` makes, compiled once for this schema."""
        compiled = self._statements.get(build)
        if compiled is None:
            statement = build()
            assert isinstance(statement, ClauseElement)
            text = statement.compile(
                dialect=_DIALECT,
                schema_translate_map={DEFAULT_SCHEMA: self.schema},
                render_schema_translate=True,
            ).string
            compiled = self._statements[build] = text.encode()
        return compiled

    def translate(self, exc: BaseException, *, parent_id: object = None) -> DarasaDBError:
        """The darasa-db error for a driver, pool or encoding error."""
        error = translate(exc, self.settings, parent_id=parent_id)
        if error is None:
            raise TypeError(f"not a database error: {exc!r}") from exc
        return error

    def _closed_error(self) -> DarasaDBError:
        return DarasaDBError("this Database is closed")

    # ------------------------------------------------------------------ lifecycle
    async def _close_with_loop(self, pool: Pool) -> None:
        """Wait until cancelled (the event loop ending, or `close()`), then close `pool`."""
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            if self._pool is pool:
                self._pool = self._loop = self._guard = self._opening = None
                try:
                    await pool.close(timeout=1.0)
                finally:
                    self._finish_connections()  # also those cut off while being configured
            raise

    def _abandon(self) -> None:
        """Forget the pool of an event loop that has ended, closing its connections without it."""
        loop = self._loop
        if loop is not None and loop.is_running():
            raise DarasaDBError(
                "this Database is in use by an event loop running in another thread: "
                "make one Database per event loop"
            )
        self._finish_connections()
        self._pool = self._loop = self._guard = self._opening = None

    def abort_connections(self) -> None:
        """Close every connection of the pool at once, in use or not (a server that stopped
        answering: whatever waits on them fails instead of hanging)."""
        self._finish_connections()

    def _finish_connections(self) -> None:
        """Close every connection the pool made, synchronously (no event loop needed)."""
        for conn in list(self._connections):
            forget_cursors(conn)
            conn.pgconn.finish()
        self._connections.clear()

    async def close(self) -> None:
        """Close the pool; safe to call twice, from any event loop."""
        self.closed = True
        pool, guard, loop = self._pool, self._guard, self._loop
        if pool is None:
            return
        if loop is not asyncio.get_running_loop():
            if loop is not None and loop.is_running():  # another thread's loop: close it there
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.close(), loop))
                return
            self._abandon()
            return
        self._pool = self._loop = self._guard = self._opening = None
        if guard is not None:
            guard.cancel()
        await pool.close()


class Borrowed:
    """The context manager of `Connector.connection()`, written out by hand: an
    `@asynccontextmanager` generator in its place costs about 5 µs more on every pooled call."""

    __slots__ = ("_conn", "_connector", "_pool")

    def __init__(self, connector: Connector) -> None:
        self._connector = connector

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        connector = self._connector
        pool = connector._pool
        if pool is None or connector._loop is not asyncio.get_running_loop():
            pool = await connector.pool()
        try:
            conn = await pool.getconn()
        except _DRIVER_ERRORS as exc:
            raise connector.translate(exc) from exc
        self._pool, self._conn = pool, conn
        return conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        conn = self._conn
        if exc is None:
            try:
                if conn.pgconn.transaction_status in _IN_TRANSACTION:  # a BEGIN of the caller's
                    await complete(conn.commit(), absorb_cancel=True)
            except BaseException as failed:
                await self._failed(failed)
                raise
            await complete(self._connector._return(self._pool, conn))
            return
        await self._failed(exc)  # (then the block's exception goes on, unless translated)

    async def _failed(self, exc: BaseException) -> None:
        """Give the connection back after `exc`; raise `exc` translated when it is a driver's."""
        conn = self._conn
        if isinstance(exc, GeneratorExit):  # its coroutine closed by the garbage collector
            conn.pgconn.finish()  # after its event loop ended: nothing can be awaited
            return
        await complete(self._connector._return(self._pool, conn))
        if isinstance(exc, _DRIVER_ERRORS):
            raise self._connector.translate(exc) from exc


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)
