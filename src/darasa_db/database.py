"""`Database`: the composition root. It builds the connector (pool, statements, errors) and the
invalidator (cache coherence), and hands the repositories the scope they run in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from darasa_db._connector import Connector, Pool, complete
from darasa_db._replicas import ReadRouter
from darasa_db.cache.invalidator import Invalidator, cache_channel
from darasa_db.cache.tag_cache import TagCache
from darasa_db.errors import DarasaDBError
from darasa_db.models.base import DEFAULT_SCHEMA
from darasa_db.repositories._scope import PoolScope, Scope, TransactionScope, transaction_scope
from darasa_db.repositories.conversations import SqlConversationRepository
from darasa_db.repositories.documents import SqlDocumentRepository
from darasa_db.repositories.interviews import SqlInterviewRepository
from darasa_db.repositories.job_infos import SqlJobInfoRepository
from darasa_db.repositories.questions import SqlQuestionRepository
from darasa_db.repositories.users import SqlUserRepository
from darasa_db.settings import DatabaseSettings
from darasa_db.telemetry import attach

__all__ = ["Database", "Transaction", "cache_channel"]

logger = logging.getLogger("darasa_db")
_DEFAULT_CACHE: Any = object()


class _Repositories:
    """The six repositories, bound to one scope (the pool, or one transaction)."""

    def __init__(self, scope: Scope) -> None:
        self.users = SqlUserRepository(scope)
        self.job_infos = SqlJobInfoRepository(scope)
        self.questions = SqlQuestionRepository(scope)
        self.interviews = SqlInterviewRepository(scope)
        self.documents = SqlDocumentRepository(scope)
        self.conversations = SqlConversationRepository(scope)
        attach(self, scope)  # OpenTelemetry, when configured: traced repositories (telemetry.py)


class Transaction(_Repositories):
    """One unit of work: `tx.users`, `tx.job_infos`, … share a single transaction.

    Calls on it take turns; reads bypass the cache; cache tags are invalidated only after the
    commit. After its block every use raises `DarasaDBError`, before any I/O.
    """

    def __init__(self, scope: TransactionScope) -> None:
        super().__init__(scope)
        self._scope = scope

    @property
    def connection(self) -> psycopg.AsyncConnection[Any]:
        """The transaction's psycopg connection, for SQL of your own in the same transaction
        (await nothing of the repositories' while you use it). It goes back to the pool after
        the block: leave its adapters and session settings as you found them."""
        if not self._scope.open:
            raise DarasaDBError("this transaction has ended: its connection is not yours any more")
        self._scope.dirty = True  # it may write: its commit's position is recorded
        return self._scope.conn


class Database(_Repositories):
    """The connection factory: a lazy, health-checked psycopg pool and the repositories.

    Constructing it does no I/O; the pool opens on first use, on the running event loop (see
    the lifecycle in docs/operations.md). `db.users`, `db.job_infos`, … run each call in its own
    transaction; `async with db.transaction() as tx` shares one. `cache=None` turns caching
    off; by default a `TagCache(maxsize=10_000, ttl=300)` is used.
    """

    def __init__(self, settings: DatabaseSettings, cache: TagCache | None = _DEFAULT_CACHE) -> None:
        self.settings = settings
        self.cache: TagCache | None = TagCache() if cache is _DEFAULT_CACHE else cache
        self._connector = Connector(settings, reserved=1 if self.cache is not None else 0)
        self._router = ReadRouter(self._connector)
        self._invalidator = Invalidator(self.cache, self._connector, self._router)
        self._engine: AsyncEngine | None = None
        super().__init__(PoolScope(self._connector, self._invalidator, self._router))

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
        """A `Database` on the embedded PostgreSQL (needs the `embedded` extra)."""
        from darasa_db.embedded import embedded_url

        return cls(DatabaseSettings(url=embedded_url(), **settings), cache=cache)

    def __repr__(self) -> str:
        connector = self._connector
        state = "closed" if connector.closed else ("open" if connector._pool else "not connected")
        return f"<Database {self.settings.safe_url} schema={self.schema!r} {state}>"

    # ------------------------------------------------------------------ what it is
    @property
    def schema(self) -> str:
        """The schema holding darasa-db's tables."""
        return self._connector.schema

    @property
    def test_mode(self) -> bool:
        """Decided once, at construction: at most 5 connections, no prepared statements."""
        return self._connector.test_mode

    @property
    def max_connections(self) -> int:
        """Connections this Database may hold at once: the primary's (the cache listener
        included) and `pool_size` per replica."""
        return self._connector.max_connections + self._router.max_connections

    @property
    def pgvector_version(self) -> tuple[int, ...] | None:
        """The server's pgvector version, known after the first connection."""
        return self._connector.pgvector_version

    @property
    def behind_pooler(self) -> bool | None:
        """True when a connection pooler sits in front of PostgreSQL (known after first use);
        prepared statements are then off unless `prepared_statements=True`."""
        return self._connector.behind_pooler

    @property
    def channel(self) -> str:
        """The NOTIFY channel of this schema's cache invalidations."""
        return self._invalidator.channel

    @property
    def cache_ready(self) -> bool:
        """True when reads may use the cache: the listener proved notices reach it."""
        return self._invalidator.ready

    # ------------------------------------------------------------------ connections
    async def pool(self) -> Pool:
        """The psycopg pool, opened on first use (the cache listener starts with it);
        `DatabaseUnavailableError` if unreachable."""
        pool = await self._connector.pool()
        self._invalidator.ensure_listening()
        return pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """`async with db.connection() as conn`: a pooled psycopg connection to the primary
        (autocommit), returned to the pool whatever happens; driver errors become darasa-db
        errors. Later reads see what you wrote on it, replicas or not. The repositories use the
        same connections: leave its adapters and session settings as you found them."""
        async with self._connector.connection() as conn:
            try:
                yield conn
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    await complete(conn.commit(), absorb_cancel=True)  # as it would on return
                await self._router.wrote(conn)  # it may have written: later reads see it
            except BaseException:  # what ran on it was acknowledged: its position is owed
                self._router.owe()
                raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One unit of work: commit on success, rollback on error or cancellation; tags are
        invalidated after the commit. A second one in the same task raises (see operations)."""
        async with transaction_scope(self._connector, self._invalidator, self._router) as scope:
            yield Transaction(scope)

    def sql(self, build: Callable[[], Executable]) -> bytes:
        """The SQL text of the statement `build()` makes, compiled once for this schema."""
        return self._connector.sql(build)

    async def health_check(self) -> bool:
        """True when a `SELECT 1` succeeds within the connect timeout; never raises."""
        try:
            async with asyncio.timeout(self.settings.connect_timeout + 1):
                await self.pool()  # (and the cache listener with it)
                async with self.connection() as conn:
                    await conn.execute("SELECT 1")
            return True
        except Exception as exc:  # health checks report, they do not raise
            logger.info("darasa-db health check failed: %s", exc)
            return False

    async def close(self) -> None:
        """Close the pool and the cache listener. Safe to call twice, and from another event
        loop than the one that used it."""
        await self._invalidator.close()
        await self._connector.close()
        await self._router.close()
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
                connect_args={"prepare_threshold": self._connector.prepare_threshold},
                execution_options={"schema_translate_map": {DEFAULT_SCHEMA: self.schema}},
            )
        return self._engine
