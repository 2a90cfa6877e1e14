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

__all__ = ["CacheListener", "NotListenable"]

logger = logging.getLogger("darasa_db.cache")


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
            self.abandon()
            await asyncio.wait({self._task}, timeout=1.0)

    def abandon(self) -> None:
        """Close the connection without an event loop (the listener's loop has ended)."""
        self.listening = False
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
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        self._reset()  # notices were not received before the LISTEN took effect
        await self._round_trip(conn)
        if self._settle is not None:  # (writes before the LISTEN count as invalidations too)
            await self._settle(conn)
        if self._warned:
            logger.warning("darasa-db cache listener is receiving notices again: caching is on")
            self._warned = None
        self.listening = True
        loop = asyncio.get_running_loop()
        heartbeat_at = loop.time() + self._heartbeat
        while True:
            batch = [
                notice.payload
                async for notice in conn.notifies(timeout=min(self._heartbeat, 1.0), stop_after=1)
            ]
            if batch and self._settle is not None:
                await self._settle(conn)  # before the notices are applied (see _replicas)
            for payload in batch:
                self._receive(payload)
            _raise_if_cancelled()
            if loop.time() >= heartbeat_at:  # a dead or deaf connection fails here
                await self._round_trip(conn)
                heartbeat_at = loop.time() + self._heartbeat

    async def _round_trip(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Send a probe notice through the pool and wait until it arrives here.

        Notices are read batch by batch to the end (`stop_after`): leaving psycopg's generator
        in the middle of a batch would drop the rest of it.
        """
        token, payload = self._probe()
        await self._send(payload)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        arrived = False
        while not arrived and (remaining := deadline - loop.time()) > 0:
            batch = [n.payload async for n in conn.notifies(timeout=remaining, stop_after=1)]
            if batch and self._settle is not None:
                await self._settle(conn)  # other writers' notices may be in it
            for payload in batch:
                arrived = self._receive(payload) == token or arrived
        if not arrived:
            raise NotListenable(
                f"the cache listener did not receive its own notice within {self._timeout:g} s "
                "(is a transaction-mode pooler or a replica in the way?): caching is off. Set "
                "DatabaseSettings(listen_url=...) to a direct connection to the primary"
            )

    def _warn(self, reason: str) -> None:
        if reason != self._warned:
            logger.warning("darasa-db: %s", reason)
            self._warned = reason
