"""`Database`: the connection factory and the entry point to the repositories."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import psycopg_pool
from psycopg.types import TypeInfo
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import ClauseElement

from darasa_db._errors_map import translate
from darasa_db.cache.listener import CacheListener
from darasa_db.cache.tag_cache import TagCache
from darasa_db.errors import DarasaDBError, DatabaseUnavailableError
from darasa_db.models.base import DEFAULT_SCHEMA
from darasa_db.repositories._scope import PoolScope, TransactionScope
from darasa_db.repositories.conversations import SqlConversationRepository
from darasa_db.repositories.documents import SqlDocumentRepository
from darasa_db.repositories.interviews import SqlInterviewRepository
from darasa_db.repositories.job_infos import SqlJobInfoRepository
from darasa_db.repositories.questions import SqlQuestionRepository
from darasa_db.repositories.users import SqlUserRepository
from darasa_db.settings import DatabaseSettings

__all__ = ["Database", "Transaction"]

logger = logging.getLogger("darasa_db")
_DIALECT = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]
_DEFAULT_CACHE: Any = object()


def _in_transaction(conn: psycopg.AsyncConnection[Any]) -> bool:
    """True when `conn` is open and not idle (a BEGIN of the caller's own, or a failed one)."""
    return not conn.closed and conn.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE


class _LifoPool(psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """Hands out the most recently returned connection, as PgBouncer does, not the oldest.

    Its server process is warm (docs/performance.md: ~20 µs a call on 2 cores), and spare
    connections stay idle, so `max_idle` can close them.
    """

    async def _get_ready_connection(
        self,
        timeout: float | None,  # noqa: ASYNC109 (psycopg_pool's signature)
    ) -> psycopg.AsyncConnection[Any] | None:
        conn = await super()._get_ready_connection(timeout)
        idle = getattr(self, "_pool", None)  # psycopg_pool's deque of idle connections
        if conn is not None and idle:  # swap the oldest for the newest (we hold the pool lock)
            idle.appendleft(conn)
            conn = idle.pop()
        return conn


def cache_channel(schema: str) -> str:
    """The NOTIFY channel of `schema`'s cache invalidations (`darasa_cache_<schema>`).

    Channel names are identifiers of at most 63 bytes: a longer one is shortened with a hash.
    """
    channel = f"darasa_cache_{schema}"
    if len(channel) <= 63:
        return channel
    return f"darasa_cache_{hashlib.sha1(schema.encode()).hexdigest()[:16]}"


class _Repositories:
    """The six repositories, bound to one scope (the pool, or one transaction)."""

    def __init__(self, scope: PoolScope | TransactionScope) -> None:
        self.users = SqlUserRepository(scope)
        self.job_infos = SqlJobInfoRepository(scope)
        self.questions = SqlQuestionRepository(scope)
        self.interviews = SqlInterviewRepository(scope)
        self.documents = SqlDocumentRepository(scope)
        self.conversations = SqlConversationRepository(scope)


class Transaction(_Repositories):
    """One unit of work: `tx.users`, `tx.job_infos`, … share a single transaction.

    Reads bypass the cache; cache tags are invalidated only after the commit.
    """

    connection: psycopg.AsyncConnection[Any]
    """The transaction's psycopg connection, for SQL of your own in the same transaction."""


class Database(_Repositories):
    """The connection factory: a lazy, health-checked psycopg pool and the repositories.

    Constructing it does no I/O; the pool opens on first use. `db.users`, `db.job_infos`, …
    run each call in its own transaction; `async with db.transaction() as tx` shares one.
    `cache=None` turns caching off; by default a `TagCache(maxsize=10_000, ttl=300)` is used.
    """

    def __init__(self, settings: DatabaseSettings, cache: TagCache | None = _DEFAULT_CACHE) -> None:
        self.settings = settings
        self.cache: TagCache | None = TagCache() if cache is _DEFAULT_CACHE else cache
        self.test_mode = settings.is_test_mode
        """Decided once, at construction: at most 5 connections, no prepared statements."""
        self.schema = settings.schema_name
        self.channel = cache_channel(self.schema)
        self.sender_id = uuid.uuid4().hex
        self.pgvector_version: tuple[int, ...] | None = None
        self._pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._opening: asyncio.Lock | None = None
        self._listener: CacheListener | None = None
        self._engine: AsyncEngine | None = None
        self._statements: dict[Callable[[], Executable], bytes] = {}
        self._returned_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self._closed = False
        super().__init__(PoolScope(self))

    @classmethod
    def from_url(
        cls, url: str, *, cache: TagCache | None = _DEFAULT_CACHE, **settings: Any
    ) -> Database:
        """A `Database` for `url` with the default cache (extra keywords go to the settings)."""
        return cls(DatabaseSettings(url=url, **settings), cache=cache)

    @classmethod
    def from_env(cls, *, cache: TagCache | None = _DEFAULT_CACHE, **settings: Any) -> Database:
        """A `Database` configured by `DatabaseSettings.from_env()`."""
        return cls(DatabaseSettings.from_env(**settings), cache=cache)

    @classmethod
    def embedded(cls, *, cache: TagCache | None = _DEFAULT_CACHE, **settings: Any) -> Database:
        """A `Database` on the embedded pgserver PostgreSQL (needs the `embedded` extra)."""
        from darasa_db.embedded import embedded_url

        return cls(DatabaseSettings(url=embedded_url(), **settings), cache=cache)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._pool else "not connected")
        return f"<Database {self.settings.safe_url} schema={self.schema!r} {state}>"

    # ------------------------------------------------------------------ connection
    @property
    def max_connections(self) -> int:
        """Connections this Database may hold at once, the cache listener included."""
        total = self.settings.pool_size + self.settings.max_overflow
        return min(total, 5) if self.test_mode else total

    def _connect_kwargs(self) -> dict[str, Any]:
        s = self.settings
        options = []
        if s.statement_timeout is not None:
            options.append(f"-c statement_timeout={int(s.statement_timeout * 1000)}")
        if s.hnsw_ef_search is not None:
            options.append(f"-c hnsw.ef_search={s.hnsw_ef_search}")
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(s.connect_timeout)),
            "application_name": s.application_name,
        }
        if options:
            kwargs["options"] = " ".join(options)
        return kwargs

    def _prepare_threshold(self) -> int | None:
        if self.test_mode or not self.settings.prepared_statements:
            return None
        return 0

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        conn.prepare_threshold = self._prepare_threshold()
        await self.register_vector(conn)

    async def register_vector(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Teach `conn` pgvector's binary format; False when the extension is not installed."""
        from pgvector.psycopg.vector import register_vector_info

        info = await TypeInfo.fetch(conn, "vector")
        if info is None:
            return False
        register_vector_info(conn, info)
        if self.pgvector_version is None:
            cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = await cur.fetchone()
            self.pgvector_version = tuple(int(p) for p in str(row[0]).split(".")) if row else (0,)
        if self.pgvector_version >= (0, 8):
            await conn.execute("SET hnsw.iterative_scan = strict_order")
        return True

    async def _check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        idle = self.settings.pre_ping_idle
        if idle is None:
            return
        returned = self._returned_at.get(conn)
        if returned is None or time.monotonic() - returned >= idle:
            await conn.execute("")

    async def pool(self) -> psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        """The psycopg pool, opened on first use; `DatabaseUnavailableError` if unreachable."""
        if self._pool is not None:
            return self._pool
        if self._closed:
            raise DatabaseUnavailableError(
                self.settings.host, self.settings.port, "the Database is closed"
            )
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool = await self._open_pool()
                if self._closed:  # close() ran while the pool was opening
                    await self._discard(pool)
                    raise DatabaseUnavailableError(
                        self.settings.host, self.settings.port, "the Database is closed"
                    )
                self._pool = pool
        return self._pool

    async def _discard(
        self, pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]
    ) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        await pool.close()

    async def _open_pool(self) -> psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        s = self.settings
        await self._probe()
        listener_slots = 1 if self.cache is not None else 0
        max_size = max(1, self.max_connections - listener_slots)
        common: dict[str, Any] = {
            "kwargs": self._connect_kwargs(),
            "configure": self._configure,
            "check": self._check,
            "timeout": s.pool_timeout,
            "max_lifetime": s.pool_recycle,
            "max_idle": s.pool_max_idle,
            "reconnect_timeout": max(s.pool_timeout, 30.0),
            "name": f"darasa-db-{self.sender_id[:8]}",
            "open": False,
        }
        pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]
        if s.null_pool:
            pool = psycopg_pool.AsyncNullConnectionPool(s.conninfo, max_size=max_size, **common)
        else:
            min_size = 1 if self.test_mode else min(s.pool_size, max_size)
            pool = _LifoPool(s.conninfo, min_size=min_size, max_size=max_size, **common)
        await pool.open(wait=False)
        if self.cache is not None:
            self._listener = CacheListener(self)
            self._listener.start()
        return pool

    async def _probe(self) -> None:
        """Connect once directly, so an unreachable server fails fast with its real cause."""
        kwargs = self._connect_kwargs()
        try:
            conn = await psycopg.AsyncConnection.connect(self.settings.conninfo, **kwargs)
        except psycopg.Error as exc:
            error = translate(exc, self.settings)
            assert error is not None
            logger.warning("darasa-db cannot connect to %s: %s", self.settings.safe_url, error)
            raise error from None
        async with conn:
            await self.register_vector(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Borrow a pooled connection (autocommit); driver errors become darasa-db errors."""
        pool = self._pool if self._pool is not None else await self.pool()
        try:
            # getconn/putconn, not pool.connection(): the latter's `async with conn` commit and
            # a reset hook cost ~25 µs a call; a transaction left open is ended as they would.
            conn = await pool.getconn()
            try:
                yield conn
            except BaseException:
                if _in_transaction(conn):
                    try:
                        await conn.rollback()
                    except Exception as exc:
                        logger.warning("darasa-db: rollback on return failed: %s", exc)
                raise
            else:
                if _in_transaction(conn):
                    await conn.commit()
            finally:
                self._returned_at[conn] = time.monotonic()  # for the pre-ping on checkout
                await pool.putconn(conn)
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            error = translate(exc, self.settings)
            assert error is not None
            raise error from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One unit of work: commit on success, rollback on error; tags invalidated after commit."""
        async with self.connection() as conn:
            scope = TransactionScope(self, conn)
            tx = Transaction(scope)
            tx.connection = conn
            committing = False
            try:
                async with conn.transaction():
                    yield tx
                    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                        raise DarasaDBError(
                            "a statement in this transaction failed, so it was rolled back"
                        )
                    committing = True
            finally:
                if committing:  # committed, or the COMMIT failed with an unknown outcome
                    scope.committed()

    async def health_check(self) -> bool:
        """True when a `SELECT 1` succeeds within the connect timeout; never raises."""
        try:
            async with asyncio.timeout(self.settings.connect_timeout + 1):
                async with self.connection() as conn:
                    await conn.execute("SELECT 1")
            return True
        except Exception as exc:  # health checks report, they do not raise
            logger.info("darasa-db health check failed: %s", exc)
            return False

    async def close(self) -> None:
        """Close the pool and the cache listener. Safe to call twice."""
        self._closed = True
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ SQLAlchemy side
    @property
    def engine(self) -> AsyncEngine:
        """A lazily built SQLAlchemy `AsyncEngine` on the same database, for your own queries.

        It has its own small pool (2 connections) and the same schema translation.
        """
        if self._engine is None:
            self._engine = create_async_engine(
                self.settings.sqlalchemy_url,
                pool_size=1,
                max_overflow=1,
                pool_pre_ping=True,
                connect_args={"prepare_threshold": self._prepare_threshold()},
                execution_options={"schema_translate_map": {DEFAULT_SCHEMA: self.schema}},
            )
        return self._engine

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

    # ------------------------------------------------------------------ cache plumbing
    @property
    def cache_ready(self) -> bool:
        """True when reads may use the cache (the cross-process listener is listening)."""
        return self.cache is not None and self._listener is not None and self._listener.listening

    def notify_payload(self, tags: tuple[str, ...]) -> str:
        """The NOTIFY payload announcing `tags` to other processes."""
        payload = json.dumps([self.sender_id, tags], separators=(",", ":"))
        if len(payload.encode()) > 7900:  # NOTIFY's limit is 8000 bytes: ask for a full clear
            payload = json.dumps([self.sender_id, None])
        return payload

    def invalidate_local(self, tags: tuple[str, ...]) -> None:
        """Drop `tags` from this process's cache (after a commit)."""
        if self.cache is not None and tags:
            self.cache.invalidate(*tags)
