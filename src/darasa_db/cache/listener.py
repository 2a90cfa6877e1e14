"""Cross-process cache coherence: LISTEN for the tags other processes invalidated.

Writers call `pg_notify` inside their transaction, so notices arrive only for commits. While the
listener's connection is down, reads bypass the cache; on every (re)connect the local cache is
cleared, since notices sent meanwhile were lost.
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

    def __init__(self, db: Database, *, retry_delay: float = 0.5) -> None:
        self._db = db
        self._retry_delay = retry_delay
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.listening = False
        self.received = 0

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
        db = self._db
        delay = self._retry_delay
        while True:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    db.settings.conninfo, **db._connect_kwargs()
                )
                await self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(db.channel)))
                if db.cache is not None:
                    db.cache.clear()  # notices may have been missed while we were not listening
                self.listening = True
                delay = self._retry_delay
                async for notice in self._conn.notifies():
                    self._apply(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.listening:
                    logger.warning("darasa-db cache listener lost its connection: %s", exc)
                self.listening = False
                if db.cache is not None:
                    db.cache.clear()
            finally:
                self.listening = False
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                    self._conn = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

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
            return
        self.received += 1
        if tags is None:
            cache.clear()
        else:
            cache.invalidate(*tags)
