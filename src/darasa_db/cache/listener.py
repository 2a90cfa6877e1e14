"""Cross-process cache coherence: LISTEN for the tags other processes invalidated.

Writers call `pg_notify` inside their transaction, so notices arrive only for commits. The
listener is ready (reads may use the cache) only once it has received a notice it sent through
the pool, the path every writer's notice takes; the heartbeat proves receipt the same way. It
never LISTENs through a connection pooler (a transaction-mode one would leave the LISTEN on a
server connection that other clients then use, and deliver nothing). Whenever it is not ready,
the local cache is cleared, since notices sent meanwhile may be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import ConnStatus

__all__ = ["CacheListener", "NotListenable"]

logger = logging.getLogger("darasa_db.cache")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _raise_if_cancelled() -> None:
    """Honour a cancellation that something below swallowed (the task must end when asked:
    `asyncio.run` waits for it)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class NotListenable(Exception):
    """Notices cannot reach this listener; the message says why and what to set."""


class CacheListener:
    """Background task on one event loop that applies notices to the local cache.

    `settle(conn)`, when given, runs on the listening connection before each batch of notices
    is applied (the read router records the primary's WAL position there).
    """

    def __init__(
        self,
        *,
        channel: str,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        send: Callable[[str], Awaitable[None]],
        probe: Callable[[], tuple[str, str]],
        receive: Callable[[str], str | None],
        reset: Callable[[], None],
        timeout: float,
        settle: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]] | None = None,
        heartbeat: float = 10.0,
        retry_delay: float = 0.5,
    ) -> None:
        self._channel = channel
        self._connect = connect
        self._send = send
        self._probe = probe
        self._receive = receive
        self._reset = reset
        self._settle = settle
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._retry_delay = retry_delay
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._warned: str | None = None
        self._socket: int | None = None  # watched by the event loop
        self._encoding = "utf-8"
        self._held: list[str] = []  # notices waiting for the replicas' settle
        self._awaited: str | None = None  # the probe a round trip waits for
        self._failure: Exception | None = None  # of the watched connection
        self._wakeup: asyncio.Future[None] | None = None
        self.loop = asyncio.get_running_loop()
        """The event loop the listener runs on."""
        self.listening = False
        """True once a notice sent through the pool came back: reads may use the cache."""
        self._task = self.loop.create_task(self._run(), name="darasa-db-listener")

    async def stop(self) -> None:
        """Stop listening and close the connection, within the connect timeout at most."""
        self.listening = False
        self._task.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=self._timeout)
        if not done:  # stuck where a cancellation does not reach: close the socket under it
            logger.warning("darasa-db cache listener did not stop when asked: closing its socket")
            self._unwatch()  # (this loop is running: `abandon` leaves it alone)
            self.abandon()
            await asyncio.wait({self._task}, timeout=1.0)

    def abandon(self) -> None:
        """Close the connection without an event loop (the listener's loop has ended)."""
        self.listening = False
        if not self.loop.is_running() and not self.loop.is_closed():
            self._unwatch()  # (a loop that may run again must not keep a reader on a closed fd)
        if self._conn is not None:
            self._conn.pgconn.finish()
            self._conn = None

    async def _run(self) -> None:
        delay = self._retry_delay
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                await self._disconnect()
                raise
            except NotListenable as exc:  # a configuration problem: check again now and then
                self._warn(str(exc))
                delay = 15.0
            except Exception as exc:
                if self.listening:
                    logger.warning("darasa-db cache listener lost its connection: %s", exc)
                    delay = self._retry_delay
                else:
                    logger.info("darasa-db cache listener cannot listen: %s", exc)
            await self._disconnect()
            _raise_if_cancelled()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _disconnect(self) -> None:
        """Not listening any more: drop the cache (notices may be missed) and the connection."""
        self.listening = False
        self._unwatch()
        self._held.clear()
        self._awaited = self._failure = None
        self._reset()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _listen(self) -> None:
        self._conn = conn = await self._connect()
        cur = await conn.execute("SELECT pg_backend_pid()")
        row = await cur.fetchone()
        if row is None or row[0] != conn.info.backend_pid:  # a pooler answered the startup
            raise NotListenable(
                "the cache listener's connection goes through a connection pooler, where LISTEN "
                "does not work: caching is off. Set DatabaseSettings(listen_url=...) to a direct "
                "connection to PostgreSQL"
            )
        conn.add_notify_handler(self._on_notify)  # notices psycopg reads while a query runs here
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        self._reset()  # notices were not received before the LISTEN took effect
        self._watch(conn)
        await self._round_trip(conn)
        if self._settle is not None:  # (writes before the LISTEN count as invalidations too)
            await self._settled(conn)
        if self._warned:
            logger.warning("darasa-db cache listener is receiving notices again: caching is on")
            self._warned = None
        self.listening = True
        loop = asyncio.get_running_loop()
        heartbeat_at = loop.time() + self._heartbeat
        while True:
            await self._next(heartbeat_at - loop.time())
            await self._apply_held(conn)
            _raise_if_cancelled()
            if loop.time() >= heartbeat_at:  # a dead or deaf connection fails here
                await self._round_trip(conn)
                heartbeat_at = loop.time() + self._heartbeat

    async def _round_trip(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Send a probe notice through the pool and wait until it arrives here."""
        token, payload = self._probe()
        self._awaited = token
        await self._send(payload)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while self._awaited is not None:  # cleared when the probe arrives
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NotListenable(
                    f"the cache listener did not receive its own notice within "
                    f"{self._timeout:g} s (is a transaction-mode pooler or a replica in the way?): "
                    "caching is off. Set DatabaseSettings(listen_url=...) to a direct connection "
                    "to the primary"
                )
            await self._next(remaining)
            await self._apply_held(conn)

    # ------------------------------------------------------------------ receiving
    # The event loop watches the listening connection's socket for as long as nothing else
    # runs on it, and each notice is applied as it is read: psycopg's `notifies()` would set up
    # and tear down a wait (a reader, a timer, a generator) for each notice, about 40 µs of
    # this process's CPU for every write of any process. Notices psycopg reads while a query
    # runs on the connection (LISTEN, the replicas' settle) reach `_on_notify` instead.

    def _watch(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._encoding = conn.info.encoding
        self._socket = conn.pgconn.socket
        self.loop.add_reader(self._socket, self._readable, conn)
        self._readable(conn)  # notices libpq has already read

    def _unwatch(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            self.loop.remove_reader(socket)

    def _readable(self, conn: psycopg.AsyncConnection[Any]) -> None:
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
            if pgconn.status != ConnStatus.OK:
                raise psycopg.OperationalError("the listening connection is closed")
            while (notice := pgconn.notifies()) is not None:
                self._arrived(notice.extra.decode(self._encoding))
        except Exception as exc:  # (a loop callback): the task raises it, drops the cache and
            self._unwatch()  # reconnects, as for any failure of the listening connection
            self._failure = exc
            self._wake()

    def _on_notify(self, notice: psycopg.Notify) -> None:
        self._arrived(notice.payload)

    def _arrived(self, payload: str) -> None:
        """Apply a notice now, or hold it for the task to settle first (replicas)."""
        if self._settle is not None:
            self._held.append(payload)
            self._wake()
        else:
            self._apply(payload)

    async def _apply_held(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Apply the notices held for the replicas' settle, after it ran."""
        if not self._held:
            return
        batch, self._held = self._held, []
        await self._settled(conn)  # notices read meanwhile wait for the next settle
        for payload in batch:
            self._apply(payload)

    def _apply(self, payload: str) -> None:
        sender = self._receive(payload)
        if sender is not None and sender == self._awaited:
            self._awaited = None
            self._wake()

    async def _settled(self, conn: psycopg.AsyncConnection[Any]) -> None:
        assert self._settle is not None
        self._unwatch()  # psycopg waits on the socket while the query runs
        await self._settle(conn)
        self._watch(conn)

    async def _next(self, seconds: float) -> None:
        """Wait until a notice is held, the awaited probe arrived, the connection failed, or
        `seconds` passed; raise the connection's failure."""
        if not (self._held or self._failure):
            loop = asyncio.get_running_loop()
            self._wakeup = wakeup = loop.create_future()
            timer = loop.call_later(max(seconds, 0.0), _resolve, wakeup)
            try:
                await wakeup
            finally:
                timer.cancel()
                self._wakeup = None
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _wake(self) -> None:
        if self._wakeup is not None:
            _resolve(self._wakeup)

    def _warn(self, reason: str) -> None:
        if reason != self._warned:
            logger.warning("darasa-db: %s", reason)
            self._warned = reason
