"""Cross-process cache coherence: LISTEN for the tags other processes invalidated.

Writers call `pg_notify` inside their transaction, so notices arrive only for commits. While the
listener's connection is down, reads bypass the cache; whenever the connection is lost, and
again on every (re)connect, the local cache is cleared, since notices sent meanwhile were lost.
A heartbeat (LISTEN again) every `heartbeat` seconds finds a connection that died silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from darasa_db.database import Database

__all__ = ["CacheListener"]

logger = logging.getLogger("darasa_db.cache")


class CacheListener:
    """Background task that applies other processes' invalidations to the local cache."""

    def __init__(self, db: Database, *, retry_delay: float = 0.5, heartbeat: float = 10.0) -> None:
        self._db = db
        self._retry_delay = retry_delay
        self._heartbeat = heartbeat
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.listening = False
        """True while LISTEN is in effect on a live connection: reads may use the cache."""
        """Notices from other processes applied so far."""

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the listening connection, while there is one."""
        return self._conn.info.backend_pid if self._conn is not None and self.listening else None

    def start(self) -> None:
        """Start listening in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="darasa-db-listener"
            )

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        self.listening = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _run(self) -> None:
        delay = self._retry_delay
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.listening:
                    logger.warning("darasa-db cache listener lost its connection: %s", exc)
                    delay = self._retry_delay
                else:
                    logger.info("darasa-db cache listener cannot connect: %s", exc)
            finally:
                self.listening = False
                if self._db.cache is not None:
                    self._db.cache.clear()  # notices may be missed from now on
                conn, self._conn = self._conn, None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self) -> None:
        db = self._db
        listen = sql.SQL("LISTEN {}").format(sql.Identifier(db.channel))
        self._conn = conn = await psycopg.AsyncConnection.connect(
            db.settings.listen_url or db.settings.conninfo, **db._connect_kwargs()
        )
        conn.prepare_threshold = None
        await conn.execute(listen)
        if db.cache is not None:
            db.cache.clear()  # notices were not received before the LISTEN took effect
        self.listening = True
        while True:
            async for notice in conn.notifies(timeout=self._heartbeat):
                self._apply(notice.payload)
            async with asyncio.timeout(db.settings.connect_timeout):
                await conn.execute(listen)  # heartbeat: a dead connection fails here

    def _apply(self, payload: str) -> None:
        cache = self._db.cache
        if cache is None:
            return
        try:
            sender, tags = json.loads(payload)
        except (ValueError, TypeError):
            cache.clear()
            return
        if sender == self._db.sender_id:
            return  # our own write: invalidated locally after its commit
        if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
            cache.invalidate(*tags)
        else:  # None asks for a full clear (tags too long for one notice)
            cache.clear()
