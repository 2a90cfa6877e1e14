"""Read routing: which server a read outside a transaction goes to, given replicas and lag.

Read-your-writes is exact, not timed: after each write it acknowledges, the Database records
the primary's WAL insert position (`pg_current_wal_insert_lsn()`, at or past the write's
commit record). A replica serves a read only once its `pg_last_wal_replay_lsn()` has reached
what the read needs; otherwise the read goes to the primary. Cache loads also need the
position the primary had when the last invalidation arrived (recorded by the cache listener),
so a lagging replica cannot put a value older than that invalidation back in the cache.

A replica that fails is skipped for a while and its pool rebuilt; with none usable, reads go
to the primary. When the primary is down, a replica that has replayed what is needed serves:
up to the primary's flush position recorded with each insert position, since WAL the primary
had only inserted when it crashed is lost and no replica will ever replay it. A commit that
changed data is flushed before it is acknowledged; one that only sent a notice (the cache
listener's probes) is flushed later, asynchronously, and is what left the insert position
out of reach. A session with `synchronous_commit` off records its insert position as flushed
(its commits are acknowledged before they are flushed).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

import psycopg
import psycopg_pool

from darasa_db._connector import Connector, complete
from darasa_db.errors import DarasaDBError, DatabaseUnavailableError, StatementMismatchError
from darasa_db.settings import DatabaseSettings

__all__ = ["ReadRouter"]

logger = logging.getLogger("darasa_db")

_POSITIONS = (  # (with synchronous_commit off a commit may be past the flush position)
    "SELECT i, CASE WHEN current_setting('synchronous_commit') = 'off' THEN i "
    "ELSE pg_current_wal_flush_lsn() - '0/0'::pg_lsn END "
    "FROM (SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn AS i) AS p"
)
_REPLAY_POSITION = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn"
SKIP_FOR = 5.0
"""Seconds a replica that failed is left out before it is tried again."""
REPLICA_POOL_TIMEOUT = 1.0
"""Seconds a read waits for a replica connection before it goes to the primary instead."""
CATCH_UP_WAIT = 1.0
"""Seconds a read waits for a replica to catch up when the primary cannot be reached, or for
the primary's position after a write of unknown outcome."""
RECHECK = 1.0
"""Seconds a replica's known position is trusted without asking it again (a promoted or
frozen replica is found within this)."""


async def _positions(conn: psycopg.AsyncConnection[Any]) -> tuple[int, int]:
    """The primary's WAL insert position (at or past every commit it has acknowledged) and its
    flush position (what survives a crash)."""
    cur = await conn.execute(_POSITIONS)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class _Replica:
    """One replica: its pool (rebuilt after a failure), what it has replayed, when to retry."""

    def __init__(self, settings: DatabaseSettings, primary: Connector) -> None:
        self.settings = settings
        self._primary = primary
        self.connector = self._new_connector()
        self.replayed = -1
        """The replay position last read from it (-1: not yet checked to be a replica)."""
        self.checked_at = 0.0
        self.skip_until = 0.0
        self.closed = False

    def _new_connector(self) -> Connector:
        connector = Connector(self.settings)
        connector.share_statements(self._primary)
        return connector

    async def reset(self, why: str, skip_for: float = SKIP_FOR) -> None:
        """Leave it out for `skip_for` seconds; its pool is closed and made anew on return."""
        if self.skip_until <= time.monotonic():
            logger.warning(
                "darasa-db: replica %s left out for %g s: %s", self.settings.safe_url, skip_for, why
            )
        self.skip_until = time.monotonic() + skip_for
        self.replayed = -1
        connector = self.connector
        if not self.closed:  # (a closed Database's replicas stay closed)
            self.connector = self._new_connector()
        await complete(connector.close())  # a cancelled read must not leave it half closed


class ReadRouter:
    """Chooses the server for each read outside a transaction, and records the positions
    reads must see: `written` (this Database's acknowledged writes) for every read, and
    `invalidated` (the last invalidation received) for cache loads, each with the primary's
    flush position at the same moment (`written_flushed`, `invalidated_flushed`), what a read
    needs when the primary is down."""

    def __init__(self, primary: Connector) -> None:
        self.primary = primary
        settings = primary.settings
        self.replicas = [
            _Replica(_replica_settings(settings, url), primary) for url in settings.replica_urls
        ]
        self.written = self.written_flushed = 0
        self.invalidated = self.invalidated_flushed = 0
        self._unsure = 0  # writes whose outcome is not known (counter)
        self._settled = 0
        self._owed = 0  # acknowledged writes whose position is not known (counter)
        self._paid = 0
        self._turn = itertools.count()

    @property
    def max_connections(self) -> int:
        """Connections the replicas' pools may hold at once."""
        return sum(r.connector.max_connections for r in self.replicas)

    # ------------------------------------------------------------------ what reads must see
    async def wrote(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Record the primary's position after a write acknowledged on `conn` (when that
        fails, the write stands: the next read asks the primary)."""
        if self.replicas:
            try:
                inserted, flushed = await _positions(conn)
            except psycopg.Error:
                self.owe()
                return
            self._wrote(inserted, flushed)

    def owe(self) -> None:
        """An acknowledged write's position is not known: reads ask the primary for its
        position before any replica serves them, and fail while it cannot be had."""
        self._owed += 1

    def unsure(self) -> None:
        """A write may have committed at an unknown position (it failed or was cancelled after
        it was sent): the next read asks the primary first (the write was not acknowledged, so
        when the primary does not answer within `CATCH_UP_WAIT`, replicas serve as they are)."""
        self._unsure += 1

    async def saw_invalidation(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Record the primary's position on `conn` (the listener's) before invalidations are
        applied: cache loads after them read no replica that is behind it."""
        inserted, flushed = await _positions(conn)
        self.invalidated = max(self.invalidated, inserted)
        self.invalidated_flushed = max(self.invalidated_flushed, flushed)

    def _wrote(self, inserted: int, flushed: int) -> None:
        self.written = max(self.written, inserted)
        self.written_flushed = max(self.written_flushed, flushed)

    # ------------------------------------------------------------------ choosing
    async def reader(self, *, cached: bool = False) -> Connector:
        """The connector a read goes to: a replica that has replayed what it needs, else the
        primary."""
        if not self.replicas:
            return self.primary
        if self._settled < self._unsure or self._paid < self._owed:
            await self._settle()
        needed = max(self.written, self.invalidated) if cached else self.written
        for replica in self._usable():
            recent = time.monotonic() - replica.checked_at < RECHECK
            if (recent and replica.replayed >= needed) or await self._caught_up(replica, needed):
                return replica.connector
        return self.primary

    async def fallback(self, failed: Connector, error: DarasaDBError, *, cached: bool) -> Connector:
        """Where a read goes after failing on `failed`; raises `error` when nowhere.

        A replica's failure sends it to the primary (the replica is left out a while if it is
        unreachable); the primary's unavailability sends it to a replica that has replayed what
        it needs, waiting up to `CATCH_UP_WAIT` for one.
        """
        if isinstance(error, StatementMismatchError):
            raise error
        if failed is not self.primary:
            replica = next((r for r in self.replicas if r.connector is failed), None)
            unreachable = isinstance(error, DatabaseUnavailableError) and not _busy(failed, error)
            if replica is not None and unreachable:  # (None: another read already reset it)
                await replica.reset(str(error))
            return self.primary
        if not isinstance(error, DatabaseUnavailableError) or not self.replicas:
            raise error
        needed = self.written_flushed  # (what a crash kept: see the module's docstring)
        if cached:
            needed = max(needed, self.invalidated_flushed)
        deadline = time.monotonic() + CATCH_UP_WAIT
        while True:
            for replica in self._usable():
                if await self._caught_up(replica, needed):
                    return replica.connector
            if time.monotonic() >= deadline:
                raise error
            await asyncio.sleep(0.05)

    def _usable(self) -> list[_Replica]:
        now = time.monotonic()
        usable = [r for r in self.replicas if r.skip_until <= now]
        if len(usable) > 1:
            start = next(self._turn) % len(usable)
            usable = usable[start:] + usable[:start]
        return usable

    async def _caught_up(self, replica: _Replica, needed: int) -> bool:
        """Ask the replica how far it has replayed (within `CATCH_UP_WAIT`: a frozen or cut-off
        replica has its sockets closed and is left out)."""
        check = asyncio.ensure_future(self._replay_position(replica))
        try:
            done, _ = await asyncio.wait({check}, timeout=CATCH_UP_WAIT)
        except BaseException:  # the read was cancelled: so is its check
            check.cancel()
            raise
        if not done:
            replica.connector.abort_connections()  # nothing may wait on them any more
            check.cancel()
            await asyncio.wait({check})
            await replica.reset(f"no answer within {CATCH_UP_WAIT:g} s")
            return False
        answer = check.result()
        if answer is None:
            return False
        in_recovery, lsn = answer
        replica.checked_at = time.monotonic()
        if not in_recovery:
            await replica.reset("it is not in recovery (not a streaming replica)", 60.0)
            return False
        replica.replayed = max(replica.replayed, lsn)
        return replica.replayed >= needed

    async def _replay_position(self, replica: _Replica) -> tuple[bool, int] | None:
        """Whether the replica is in recovery, and its replay position; None when it failed."""
        try:
            async with replica.connector.connection() as conn:
                cur = await conn.execute(_REPLAY_POSITION)
                row = await cur.fetchone()
            assert row is not None
            return bool(row[0]), int(row[1] or 0)
        except DarasaDBError as exc:
            if not _busy(replica.connector, exc):
                await replica.reset(str(exc))
            return None

    async def _settle(self) -> None:
        """Learn the primary's current position, after writes whose position is not known.

        For acknowledged writes (`owe`) this is required: while the primary does not answer,
        reads raise `DatabaseUnavailableError`. Writes of unknown outcome (`unsure`) were not
        acknowledged: when the primary does not answer within `CATCH_UP_WAIT`, replicas serve
        as they are.
        """
        upto, owed = self._unsure, self._owed
        try:
            async with asyncio.timeout(None if self._paid < owed else CATCH_UP_WAIT):
                async with self.primary.connection() as conn:
                    inserted, flushed = await _positions(conn)
            self._wrote(inserted, flushed)
            self._paid = max(self._paid, owed)
        except (DarasaDBError, TimeoutError) as exc:
            if self._paid < owed:
                s = self.primary.settings
                raise DatabaseUnavailableError(
                    s.host,
                    s.port,
                    "it does not answer, and the position of a write it acknowledged is not "
                    "known: no replica can be shown to have that write",
                ) from exc
            logger.info("darasa-db: primary position unknown (%r); reading from replicas", exc)
        self._settled = max(self._settled, upto)

    async def close(self) -> None:
        """Close every replica's pool, for good."""
        for replica in self.replicas:
            replica.closed = True
            await replica.connector.close()


def _replica_settings(settings: DatabaseSettings, url: str) -> DatabaseSettings:
    return settings.model_copy(
        update={
            "url": url,
            "replica_urls": (),
            "listen_url": None,
            "max_overflow": 0,
            "pool_timeout": min(settings.pool_timeout, REPLICA_POOL_TIMEOUT),
        }
    )


def _busy(connector: Connector, error: BaseException) -> bool:
    """True when a replica's pool had no free connection in time while it holds connections:
    busy rather than down (the pool of a server that is down loses its connections)."""
    if not isinstance(error.__cause__, psycopg_pool.PoolTimeout):
        return False
    return connector.stats().get("pool_size", 0) > 0
