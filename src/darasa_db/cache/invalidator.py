"""The invalidator: the NOTIFY channel and payloads, local invalidation, and whether reads may
use the cache (the listener's readiness, proved by a round trip)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import uuid
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

import psycopg

from darasa_db._connector import Connector
from darasa_db._replicas import ReadRouter
from darasa_db.cache.listener import CacheListener
from darasa_db.cache.tag_cache import TagCache

__all__ = ["Invalidator", "cache_channel"]

_NOTIFY_LIMIT = 7900  # NOTIFY's payload limit is 8000 bytes


def cache_channel(schema: str) -> str:
    """The NOTIFY channel of `schema`'s cache invalidations (`darasa_cache_<schema>`).

    Channel names are identifiers of at most 63 bytes: a longer one is shortened with a hash.
    """
    channel = f"darasa_cache_{schema}"
    if len(channel) <= 63:
        return channel
    return f"darasa_cache_{hashlib.sha1(schema.encode()).hexdigest()[:16]}"


class Invalidator:
    """Announces committed writes' tags to other processes and applies theirs to `cache`.

    A notice is `[sender, tags]` in JSON: `tags` a list of tags, `[]` for a listener's probe,
    or null for "clear everything" (tags too long for one notice).
    """

    def __init__(self, cache: TagCache | None, connector: Connector, router: ReadRouter) -> None:
        self.cache = cache
        self.channel = cache_channel(connector.schema)
        self.sender_id = uuid.uuid4().hex
        self._payload_start = f'["{self.sender_id}",['  # (the sender id never changes)
        self._connector = connector
        self._router = router
        self._listener: CacheListener | None = None
        self._probes = itertools.count()
        self._closed = False

    # ------------------------------------------------------------------ writers
    def payload(self, tags: Sequence[str]) -> str:
        """The NOTIFY payload announcing `tags` to other processes."""
        # What `json.dumps([sender_id, tags], separators=(",", ":"))` writes, built in C calls.
        payload = f"{self._payload_start}{','.join(map(encode_basestring_ascii, tags))}]]"
        if len(payload) > _NOTIFY_LIMIT:  # (ASCII: non-ASCII characters are escaped)
            payload = json.dumps([self.sender_id, None])
        return payload

    async def notify(self, conn: psycopg.AsyncConnection[Any], tags: Sequence[str]) -> None:
        """Send the notice of `tags` on `conn` (delivered when its transaction commits)."""
        await self._pg_notify(conn, self.payload(tags))

    async def _pg_notify(self, conn: psycopg.AsyncConnection[Any], payload: str) -> None:
        await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))

    def invalidate_local(self, tags: Sequence[str]) -> None:
        """Drop `tags` from this process's cache (after a commit)."""
        if self.cache is not None and tags:
            self.cache.invalidate(*tags)

    # ------------------------------------------------------------------ readers
    @property
    def ready(self) -> bool:
        """True when reads may use the cache: the listener proved notices reach it."""
        listener = self._listener
        return self.cache is not None and listener is not None and listener.listening

    def ensure_listening(self) -> bool:
        """Start the listener on the running event loop if needed; True when ready."""
        if self.cache is None or self._closed:
            return False
        listener = self._listener
        if listener is None or listener.loop is not asyncio.get_running_loop():
            if listener is not None:
                listener.abandon()  # its loop has ended; its task went with it
            self._listener = listener = self._start()
        return listener.listening

    def _start(self) -> CacheListener:
        connector = self._connector
        listen_url = connector.settings.listen_url
        return CacheListener(
            channel=self.channel,
            connect=lambda: connector.connect(listen_url),
            send=self._send_probe,
            probe=self._probe,
            receive=self.receive,
            reset=self._clear,
            settle=self._router.saw_invalidation if self._router.replicas else None,
            timeout=connector.settings.connect_timeout,
        )

    def _probe(self) -> tuple[str, str]:
        token = f"{self.sender_id}:{next(self._probes)}"
        return token, json.dumps([token, []])

    async def _send_probe(self, payload: str) -> None:
        async with self._connector.connection() as conn:
            await self._pg_notify(conn, payload)

    def receive(self, payload: str) -> str | None:
        """Apply a notice; returns its sender (None when unreadable: everything is dropped)."""
        cache = self.cache
        try:
            sender, tags = json.loads(payload)
        except (ValueError, TypeError, RecursionError):  # ("[[[…" nests past the recursion limit)
            sender = tags = None
        if not isinstance(sender, str):
            self._clear()
            return None
        if sender == self.sender_id or tags == []:
            return sender  # our own write (invalidated after its commit), or a probe
        if cache is not None:
            if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
                cache.invalidate(*tags)
            else:
                cache.clear()
        return sender

    def _clear(self) -> None:
        if self.cache is not None:
            self.cache.clear()

    async def close(self) -> None:
        """Stop the listener (from any event loop); none starts again."""
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is None:
            return
        if listener.loop is asyncio.get_running_loop():
            await listener.stop()
        else:
            listener.abandon()
