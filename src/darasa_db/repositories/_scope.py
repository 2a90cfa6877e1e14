"""Where repository statements run: on the pool (one call, one transaction) or in a transaction.

Both scopes run SQL compiled once per schema by the connector, build DTOs straight from rows
through checked row factories, and let the connector translate driver errors. Pool reads go
through the cache and are retried on transient failures; writes are never retried, but a
statement refused by a stale prepared plan (the schema changed) is run once more after the
connection's plans are dropped, since it never ran.

A transaction scope has a lifecycle: calls on it take turns, a call cancelled inside it fails
the transaction, and once its block is over every use raises before any I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import AsyncRowFactory
from sqlalchemy import Executable

from darasa_db._connector import Connector, complete, rows_of
from darasa_db._errors_map import (
    UnknownTypeError,
    is_stale_plan,
    is_stale_read,
    is_transient_read_error,
)
from darasa_db._replicas import ReadRouter
from darasa_db.cache.invalidator import Invalidator
from darasa_db.cache.tag_cache import TagCache
from darasa_db.errors import DarasaDBError, DatabaseUnavailableError, StatementMismatchError
from darasa_db.repositories._statements import storable

__all__ = ["Build", "PoolScope", "Scope", "TransactionScope", "transaction_scope"]

T = TypeVar("T")
Build = Callable[[], Executable]
Work = Callable[[psycopg.AsyncConnection[Any]], Any]

_OPEN: ContextVar[TransactionScope | None] = ContextVar("darasa_db_transaction", default=None)
_MISS: Any = object()
_KEYS = (("id", 255), ("user_id", 255), ("email_key", None))  # text keys, their column bound
_BROKEN = (
    "a call in this transaction failed and its connection was replaced: the transaction was "
    "rolled back; run the whole block again"
)
_ENDED = (
    "this transaction has ended: use a Transaction and its repositories only inside its "
    "`async with db.transaction() as tx:` block"
)


def _storable_keys(params: dict[str, Any]) -> bool:
    """False when a text key cannot name any row (NUL, lone surrogate, longer than its column):
    the statement would match nothing, so it is not sent."""
    for name, limit in _KEYS:
        value = params.get(name)
        if isinstance(value, str) and not storable(value, limit):
            return False
    return True


def _open_transaction(connector: Connector) -> TransactionScope | None:
    """This task's open transaction on `connector`, if any."""
    scope = _OPEN.get()
    return scope if scope is not None and scope.open and scope.connector is connector else None


class Scope:
    """Runs a repository's statements; subclasses decide connection, cache and retries."""

    retry_safe = False
    """True when a statement that failed can be run again (no transaction was aborted by it)."""
    caching = False
    """True when reads may be cached: only then do repositories build cache keys and tags."""

    def __init__(self, connector: Connector, invalidator: Invalidator, router: ReadRouter) -> None:
        self.connector = connector
        self.invalidator = invalidator
        self.router = router

    async def _fetch(
        self,
        conn: psycopg.AsyncConnection[Any],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        parent_id: object = None,
        binary: bool = False,
    ) -> list[T]:
        if not _storable_keys(params):
            return []
        connector = self.connector
        try:
            statement = connector.sql(build)
            if not connector.settings.row_level_security:
                return await rows_of(conn, statement, params, factory, binary)
            if conn.info.transaction_status != TransactionStatus.IDLE:
                await set_rls_identity(conn, params)
                return await rows_of(conn, statement, params, factory, binary)
            async with conn.transaction():  # set_config(..., true) lives as long as a transaction
                await set_rls_identity(conn, params)
                return await rows_of(conn, statement, params, factory, binary)
        except StatementMismatchError:
            connector.discard(conn)
            raise
        except (psycopg.Error, UnicodeEncodeError) as exc:
            raise connector.translate(exc, parent_id=parent_id) from exc

    def read(
        self,
        key: Hashable | None,
        tags: Sequence[str],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        *,
        binary: bool = False,
    ) -> Awaitable[list[T]]:
        """Rows of a read-only statement, cached under `key` and `tags` where allowed.

        `key=None` never caches. `binary` fetches the rows in binary format: only for
        statements whose columns all have binary loaders (no enum columns).
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

    async def run(self, work: Work, tags: Sequence[str]) -> Any:
        """Run `work(conn)` as one write unit (used for COPY); tags invalidated after commit."""
        raise NotImplementedError

    async def snapshot(self, work: Work) -> Any:
        """Run `work(conn)`, several reads, on one consistent view of the data (an export)."""
        raise NotImplementedError

    def _notify_params(self, params: dict[str, Any], tags: Sequence[str]) -> dict[str, Any]:
        params["notify_channel"] = self.invalidator.channel
        params["notify_payload"] = self.invalidator.payload(tags)
        return params

    async def _guarded(self, work: Work, conn: psycopg.AsyncConnection[Any]) -> Any:
        try:
            return await work(conn)
        except (psycopg.Error, UnicodeEncodeError) as exc:
            raise self.connector.translate(exc) from exc


class PoolScope(Scope):
    """Each call borrows a pooled connection and runs in autocommit: one statement, one trip.

    Reads go where the router sends them (a replica that has replayed what they need, else the
    primary); writes go to the primary, and the router records their WAL position.
    """

    retry_safe = True
    cache_outcome: Callable[[str], None] | None = None
    """Told `hit` or `miss` by each cached read, when set (by darasa_db.telemetry's tracing)."""

    def __init__(self, connector: Connector, invalidator: Invalidator, router: ReadRouter) -> None:
        super().__init__(connector, invalidator, router)
        self.caching = invalidator.cache is not None

    def read(
        self,
        key: Hashable | None,
        tags: Sequence[str],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        *,
        binary: bool = False,
    ) -> Awaitable[list[T]]:
        # Not a coroutine itself: an uncached read awaits `_routed` directly (one frame less).
        cache = self.invalidator.cache
        ready = self.invalidator.ensure_listening()  # the cache listener starts with the first call
        if key is not None and cache is not None and ready:
            return self._cached(cache, key, tags, build, params, factory, binary)
        return self._routed(False, self._fetch, build, params, factory, None, binary)

    async def _cached(
        self,
        cache: TagCache,
        key: Hashable,
        tags: Sequence[str],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        binary: bool,
    ) -> list[T]:
        cached = cache.hit(key, _MISS)
        if cached is not _MISS:  # the usual case first: no loader, no coroutine
            if self.cache_outcome is not None:
                self.cache_outcome("hit")
            return list(cached)
        if self.cache_outcome is not None:
            self.cache_outcome("miss")
        load = partial(self._load_tuple, build, params, factory, binary)  # (no closures)
        rows: tuple[T, ...] = await cache.get_or_load(key, tags, load)
        return list(rows)

    async def search(
        self, build: Build, params: dict[str, Any], factory: AsyncRowFactory[T]
    ) -> list[T]:
        self.invalidator.ensure_listening()
        return await self._routed(False, self._fetch, build, params, factory, None, True)

    async def _load_tuple(
        self, build: Build, params: dict[str, Any], factory: AsyncRowFactory[T], binary: bool
    ) -> tuple[T, ...]:
        return tuple(await self._routed(True, self._fetch, build, params, factory, None, binary))

    async def _routed(self, cached: bool, work: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`work(conn, *args)`, read-only, where the router sends it (`cached`: a cache load);
        once more on the same connection after a stale plan (it never ran); on a failure, where
        the router sends it next (another server), or again after a transient error."""
        router = self.router
        connector = await router.reader(cached=cached) if router.replicas else self.connector
        retries = self.connector.settings.read_retries
        attempt = moves = 0
        while True:
            try:
                async with connector.connection() as conn:
                    try:  # (inline, not a wrapper coroutine: every read passes here)
                        return await work(conn, *args)
                    except DarasaDBError as exc:
                        if not is_stale_read(exc):
                            raise
                    await self._forget_plans(conn)
                    return await work(conn, *args)
            except DarasaDBError as exc:
                elsewhere = connector is not self.connector or isinstance(
                    exc, DatabaseUnavailableError
                )
                if router.replicas and elsewhere and moves <= len(router.replicas):
                    connector = await router.fallback(connector, exc, cached=cached)
                    moves += 1
                    continue
                if attempt >= retries or not is_transient_read_error(exc.__cause__ or exc):
                    raise
                attempt += 1
                await asyncio.sleep(0.05 * 2**attempt)

    async def _fetch_fresh(
        self,
        conn: psycopg.AsyncConnection[Any],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        parent_id: object = None,
        binary: bool = False,
    ) -> list[T]:
        """`_fetch` on a pooled connection, run again once after a stale plan (it never ran)."""
        try:
            return await self._fetch(conn, build, params, factory, parent_id, binary)
        except UnknownTypeError as exc:  # the write ran (autocommit): never "safe to retry"
            raise DarasaDBError(
                f"the write was done (do not run it again), but its result cannot be read: {exc}"
            ) from exc
        except DarasaDBError as exc:
            if not is_stale_plan(exc.__cause__):
                raise
        await self._forget_plans(conn)
        return await self._fetch(conn, build, params, factory, parent_id, binary)

    async def _forget_plans(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Drop `conn`'s prepared statements after one was refused as stale (the schema
        changed under it)."""
        if conn.prepare_threshold is not None:  # (none made otherwise: behind a pooler, say)
            await conn.execute("DEALLOCATE ALL", prepare=False)  # psycopg forgets its names too
        await self.connector.register_vector(conn)  # the type may have been recreated

    async def write(
        self,
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        tags: Sequence[str],
        *,
        parent_id: object = None,
    ) -> list[T]:
        self._refuse_inside_transaction()
        self._notify_params(params, tags)
        self.invalidator.ensure_listening()  # the cache listener starts with the first call
        sent = False
        try:
            async with self.connector.connection() as conn:
                sent = True
                rows = await self._fetch_fresh(conn, build, params, factory, parent_id)
                if self.router.replicas:
                    await self.router.wrote(conn)
        except BaseException:  # it may have committed (lost connection, cancelled): invalidate
            if sent:
                self.router.unsure()
            self.invalidator.invalidate_local(tags)
            raise
        if rows:
            self.invalidator.invalidate_local(tags)
        return rows

    async def run(self, work: Work, tags: Sequence[str]) -> Any:
        self._refuse_inside_transaction()
        self.invalidator.ensure_listening()
        sent = False
        try:
            async with self.connector.connection() as conn:
                sent = True
                async with conn.transaction():
                    result = await self._guarded(work, conn)
                    await self.invalidator.notify(conn, tags)
                await self.router.wrote(conn)
        except BaseException:  # (the COMMIT's outcome may be unknown)
            if sent:
                self.router.unsure()
            raise
        finally:
            self.invalidator.invalidate_local(tags)
        return result

    async def snapshot(self, work: Work) -> Any:
        """In one REPEATABLE READ, READ ONLY transaction, routed like a read."""
        return await self._routed(False, self._snapshot_on, work)

    async def _snapshot_on(self, conn: psycopg.AsyncConnection[Any], work: Work) -> Any:
        async with conn.transaction():
            await conn.execute(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", prepare=False
            )
            return await self._guarded(work, conn)

    def _refuse_inside_transaction(self) -> None:
        if _open_transaction(self.connector) is not None:
            raise DarasaDBError(
                "a db.<repository> write inside an open db.transaction() of the same task would "
                "wait on that transaction's own locks: use tx.<repository> instead"
            )


class TransactionScope(Scope):
    """Every call runs on the transaction's connection, one at a time; invalidations wait for
    the commit."""

    def __init__(
        self,
        connector: Connector,
        invalidator: Invalidator,
        router: ReadRouter,
        conn: psycopg.AsyncConnection[Any],
    ) -> None:
        super().__init__(connector, invalidator, router)
        self.conn = conn
        self.dirty = False
        """True once something in it may have written (its commit's position is recorded)."""
        self.pending: list[str] = []
        self.open = True
        """False once the transaction's block is over: every use raises."""
        self.cancelled = False
        """True when a call was cancelled inside the transaction: it will not commit."""
        self.broken = False
        """True once its connection was discarded (another statement's result, stale plans)."""
        self.lock = asyncio.Lock()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The connection, for one call at a time, while the transaction is open."""
        if not self.open:
            raise DarasaDBError(_ENDED)
        async with self.lock:
            if not self.open:
                raise DarasaDBError(_ENDED)
            if self.broken:
                raise DarasaDBError(_BROKEN)
            try:
                yield self.conn
            except DarasaDBError as exc:
                if is_stale_read(exc) and not self.broken:  # its plans and types must go too
                    self.connector.discard(self.conn)
                    self.broken = True
                raise
            except Exception:
                raise
            except BaseException:  # cancelled mid-call: what it did must not commit
                self.cancelled = True
                raise

    async def read(
        self,
        key: Hashable | None,
        tags: Sequence[str],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
        *,
        binary: bool = False,
    ) -> list[T]:
        async with self.turn() as conn:
            return await self._in_transaction(conn, build, params, factory, binary=binary)

    async def search(
        self, build: Build, params: dict[str, Any], factory: AsyncRowFactory[T]
    ) -> list[T]:
        async with self.turn() as conn:
            return await self._in_transaction(conn, build, params, factory, binary=True)

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
        self.dirty = True
        async with self.turn() as conn:
            rows = await self._in_transaction(conn, build, params, factory, parent_id)
        if rows:
            self.pending.extend(tags)
        return rows

    async def _in_transaction(
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
            return await self._fetch(conn, build, params, factory, parent_id, binary=binary)
        except StatementMismatchError:
            self.broken = True  # (_fetch discarded the connection)
            raise

    async def run(self, work: Work, tags: Sequence[str]) -> Any:
        async def unit(conn: psycopg.AsyncConnection[Any]) -> Any:
            async with conn.transaction():  # a savepoint: a failed COPY leaves the tx usable
                result = await work(conn)
                await self.invalidator.notify(conn, tags)
            return result

        self.dirty = True
        async with self.turn() as conn:
            result = await self._guarded(unit, conn)
        self.pending.extend(tags)
        return result

    async def snapshot(self, work: Work) -> Any:
        """Inside the transaction, at its isolation level (its own writes included)."""
        async with self.turn() as conn:
            return await self._guarded(work, conn)


@asynccontextmanager
async def transaction_scope(
    connector: Connector, invalidator: Invalidator, router: ReadRouter
) -> AsyncIterator[TransactionScope]:
    """One transaction: commit when the block succeeds, roll back when it raises, when a call
    in it failed or was cancelled; queued tags are invalidated after the commit.

    Once the COMMIT is sent the block has happened: a cancellation arriving during it is
    absorbed, so a caller that sees `CancelledError` knows nothing was committed.
    """
    if _open_transaction(connector) is not None:
        raise DarasaDBError(
            "a db.transaction() is already open in this task: a second one would use another "
            "connection and could wait forever on the first one's locks; use the open "
            "transaction's tx.<repository> instead"
        )
    committed = False
    invalidator.ensure_listening()
    try:
        async with connector.connection() as conn:
            scope = TransactionScope(connector, invalidator, router, conn)
            token = _OPEN.set(scope)
            try:
                await conn.execute("BEGIN", prepare=False)
                try:
                    yield scope
                finally:
                    scope.open = False  # no call starts any more; one still running finishes:
                    await complete(_drained(scope.lock))  # (a cancellation cannot cut the wait)
                status = conn.pgconn.transaction_status
                if scope.cancelled or status != TransactionStatus.INTRANS:
                    why = "was cancelled" if scope.cancelled else "failed"
                    raise DarasaDBError(f"a call in this transaction {why}, so it was rolled back")
                await complete(conn.commit(), absorb_cancel=True)
                committed = True
                if scope.dirty:
                    try:
                        await router.wrote(conn)
                    except BaseException:  # (a cancellation here is absorbed: committed)
                        router.owe()
                        raise
            finally:
                _OPEN.reset(token)
    except asyncio.CancelledError:
        if not committed:
            raise  # (after the commit, a cancellation while the connection goes back is moot)
    if committed:
        invalidator.invalidate_local(tuple(dict.fromkeys(scope.pending)))


async def _drained(lock: asyncio.Lock) -> None:
    async with lock:
        pass


async def set_rls_identity(conn: psycopg.AsyncConnection[Any], params: dict[str, Any]) -> None:
    """Set `darasa.user_id` / `darasa.email` (an email key) for the row-level security policies.

    Both are transaction-local.
    """
    await conn.execute(
        "SELECT set_config('darasa.user_id', %s, true), set_config('darasa.email', %s, true)",
        (str(params.get("user_id") or ""), str(params.get("email_key") or "")),
    )
