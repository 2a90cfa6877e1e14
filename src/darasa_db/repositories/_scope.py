"""Where repository statements run: on the pool (one call, one transaction) or in a transaction.

Both scopes run SQL compiled once per schema by `Database.sql`, build DTOs straight from rows
through psycopg row factories, and turn driver errors into darasa-db errors. Pool reads go
through the cache and are retried on transient failures; writes are never retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import AsyncRowFactory
from sqlalchemy import Executable

from darasa_db._errors_map import is_transient_read_error, is_unstorable, translate

if TYPE_CHECKING:
    from darasa_db.database import Database

__all__ = ["PoolScope", "Scope", "TransactionScope"]

T = TypeVar("T")
Build = Callable[[], Executable]


class Scope:
    """Runs a repository's statements; subclasses decide connection, cache and retries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _fetch(
        self,
        conn: psycopg.AsyncConnection[Any],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        parent_id: object = None,
        *,
        binary: bool = False,
    ) -> list[T]:
        try:
            cur = conn.cursor(row_factory=factory, binary=binary)
            if not self.db.settings.row_level_security:
                await cur.execute(self.db.sql(build), params)
                return await cur.fetchall()
            if conn.info.transaction_status != TransactionStatus.IDLE:
                await set_rls_identity(conn, params)
                await cur.execute(self.db.sql(build), params)
                return await cur.fetchall()
            async with conn.transaction():  # set_config(..., true) lives as long as a transaction
                await set_rls_identity(conn, params)
                await cur.execute(self.db.sql(build), params)
                return await cur.fetchall()
        except (psycopg.Error, UnicodeEncodeError) as exc:
            if is_unstorable(exc):
                return []  # a key PostgreSQL cannot store matches no row
            error = translate(exc, self.db.settings, parent_id=parent_id)
            assert error is not None
            raise error from exc

    async def read(
        self,
        key: Hashable | None,
        tags: Sequence[str],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
    ) -> list[T]:
        """Rows of a read-only statement, cached under `key` and `tags` where allowed.

        `key=None` never caches.
        """
        raise NotImplementedError

    async def search(
        self, build: Build, params: dict[str, Any], factory: AsyncRowFactory[T]
    ) -> list[T]:
        """Rows of an uncached read fetched in binary format (embeddings parse ~4x faster).

        Only for statements whose columns all have binary loaders (no enum columns).
        """
        raise NotImplementedError

    async def write(
        self,
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        tags: Sequence[str],
        *,
        parent_id: object = None,
    ) -> list[T]:
        """Rows returned by a write whose statement notifies `tags` (see `notifying`)."""
        raise NotImplementedError

    async def run(
        self, work: Callable[[psycopg.AsyncConnection[Any]], Any], tags: Sequence[str]
    ) -> Any:
        """Run `work(conn)` as one write unit (used for COPY); tags invalidated after commit."""
        raise NotImplementedError

    def _notify_params(self, params: dict[str, Any], tags: Sequence[str]) -> dict[str, Any]:
        params["notify_channel"] = self.db.channel
        params["notify_payload"] = self.db.notify_payload(tuple(tags))
        return params


class PoolScope(Scope):
    """Each call borrows a pooled connection and runs in autocommit: one statement, one trip."""

    async def read(
        self,
        key: Hashable | None,
        tags: Sequence[str],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
    ) -> list[T]:
        db = self.db
        if key is not None and db.cache is not None and db.cache_ready:
            load = partial(self._load_tuple, build, params, factory)  # cheaper than closures
            rows: tuple[T, ...] = await db.cache.get_or_load(key, tags, load)
            return list(rows)
        if db.cache is not None and db._pool is None:
            await db.pool()  # starts the listener; reads bypass the cache until it listens
        return await self._read_with_retries(build, params, factory)

    async def search(
        self, build: Build, params: dict[str, Any], factory: AsyncRowFactory[T]
    ) -> list[T]:
        return await self._read_with_retries(build, params, factory, binary=True)

    async def _load_tuple(
        self, build: Build, params: dict[str, Any], factory: AsyncRowFactory[T]
    ) -> tuple[T, ...]:
        return tuple(await self._read_with_retries(build, params, factory))

    async def _read_with_retries(
        self,
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        *,
        binary: bool = False,
    ) -> list[T]:
        retries = self.db.settings.read_retries
        attempt = 0
        while True:
            try:
                async with self.db.connection() as conn:
                    return await self._fetch(conn, build, params, factory, binary=binary)
            except Exception as exc:
                cause = exc.__cause__ if exc.__cause__ is not None else exc
                if attempt >= retries or not is_transient_read_error(cause):
                    raise
                attempt += 1
                await asyncio.sleep(0.05 * 2**attempt)

    async def write(
        self,
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        tags: Sequence[str],
        *,
        parent_id: object = None,
    ) -> list[T]:
        self._notify_params(params, tags)
        try:
            async with self.db.connection() as conn:
                rows = await self._fetch(conn, build, params, factory, parent_id)
        except BaseException:  # it may have committed (lost connection, cancelled): invalidate
            self.db.invalidate_local(tuple(tags))
            raise
        if rows:
            self.db.invalidate_local(tuple(tags))
        return rows

    async def run(
        self, work: Callable[[psycopg.AsyncConnection[Any]], Any], tags: Sequence[str]
    ) -> Any:
        try:
            async with self.db.connection() as conn, conn.transaction():
                result = await _guarded(work, conn, self.db)
                await _notify(conn, self.db, tags)
        finally:  # also when the COMMIT's outcome is unknown
            self.db.invalidate_local(tuple(tags))
        return result


class TransactionScope(Scope):
    """Every call runs on the transaction's connection; invalidations wait for the commit."""

    def __init__(self, db: Database, conn: psycopg.AsyncConnection[Any]) -> None:
        super().__init__(db)
        self.conn = conn
        self.pending: list[str] = []

    async def read(
        self,
        key: Hashable | None,
        tags: Sequence[str],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
    ) -> list[T]:
        return await self._fetch(self.conn, build, params, factory)

    async def search(
        self, build: Build, params: dict[str, Any], factory: AsyncRowFactory[T]
    ) -> list[T]:
        return await self._fetch(self.conn, build, params, factory, binary=True)

    async def write(
        self,
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        tags: Sequence[str],
        *,
        parent_id: object = None,
    ) -> list[T]:
        self._notify_params(params, tags)
        rows = await self._fetch(self.conn, build, params, factory, parent_id)
        if rows:
            self.pending.extend(tags)
        return rows

    async def run(
        self, work: Callable[[psycopg.AsyncConnection[Any]], Any], tags: Sequence[str]
    ) -> Any:
        async def unit(conn: psycopg.AsyncConnection[Any]) -> Any:
            async with conn.transaction():  # a savepoint: a failed COPY leaves the tx usable
                result = await work(conn)
                await _notify(conn, self.db, tags)
            return result

        result = await _guarded(unit, self.conn, self.db)
        self.pending.extend(tags)
        return result

    def committed(self) -> None:
        """Apply the queued invalidations (called once the transaction committed)."""
        tags, self.pending = tuple(dict.fromkeys(self.pending)), []
        self.db.invalidate_local(tags)


async def set_rls_identity(conn: psycopg.AsyncConnection[Any], params: dict[str, Any]) -> None:
    """Set `darasa.user_id` / `darasa.email` (an email key) for the row-level security policies.

    Both are transaction-local.
    """
    await conn.execute(
        "SELECT set_config('darasa.user_id', %s, true), set_config('darasa.email', %s, true)",
        (str(params.get("user_id") or ""), str(params.get("email_key") or "")),
    )


async def _notify(conn: psycopg.AsyncConnection[Any], db: Database, tags: Sequence[str]) -> None:
    await conn.execute("SELECT pg_notify(%s, %s)", (db.channel, db.notify_payload(tuple(tags))))


async def _guarded(
    work: Callable[[psycopg.AsyncConnection[Any]], Any],
    conn: psycopg.AsyncConnection[Any],
    db: Database,
) -> Any:
    try:
        return await work(conn)
    except (psycopg.Error, UnicodeEncodeError) as exc:
        error = translate(exc, db.settings)
        assert error is not None
        raise error from exc
