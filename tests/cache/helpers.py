"""Helpers of the cache tests: databases whose listener listens, a recording cache, counters."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from darasa_db import Database, DatabaseSettings, TagCache
from darasa_db.schemas import JobInfoCreate, User, UserUpsert


class RecordingCache(TagCache):
    """A real `TagCache` that also remembers the tags of every `invalidate` call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invalidated: list[frozenset[str]] = []

    def invalidate(self, *tags: str) -> None:
        self.invalidated.append(frozenset(tags))
        super().invalidate(*tags)

    def all_invalidated(self) -> set[str]:
        return set().union(*self.invalidated)


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], *, within: float = 10.0, what: str = ""
) -> None:
    """Poll `check` until it is true, failing after `within` seconds (a bounded wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not true within {within} s: {what or check}")
        await asyncio.sleep(0.01)


async def open_database(url: str, cache: TagCache | None = None, **settings: Any) -> Database:
    """A test-mode `Database` on `url` whose pool is open and whose listener (if any) listens."""
    db = Database(DatabaseSettings(url=url, test_mode=True, **settings), cache=cache)
    await db.pool()
    if cache is not None:
        await eventually(lambda: db.cache_ready, what="the cache listener listens")
    return db


async def make_user(db: Database, name: str) -> User:
    return await db.users.upsert(
        UserUpsert(id=f"user_{name}", email=f"{name}@example.com", name=name.title())
    )


def job_info_input(name: str = "Acme") -> JobInfoCreate:
    return JobInfoCreate(
        name=name, title="Backend engineer", experience_level="senior", description="Build it."
    )


async def table_scans(db: Database, observer_url: str, table: str) -> int:
    """Sequential plus index scans of `table` counted by the server so far.

    `db` must have a single pooled connection: it is asked to flush its statistics first
    (`pg_stat_force_next_flush`, PostgreSQL 15+), which happens before it answers.
    """
    async with db.connection() as conn:
        await conn.execute("SELECT pg_stat_force_next_flush()")
    async with await psycopg.AsyncConnection.connect(observer_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
            " WHERE schemaname = %s AND relname = %s",
            (db.schema, table),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def listener_pids(url: str, application_name: str) -> set[int]:
    """Server pids of the cache listeners of the Databases named `application_name`."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s AND query LIKE 'LISTEN%%'",
            (application_name,),
        )
        return {row[0] for row in await cur.fetchall()}


async def send_marker(db: Database) -> str:
    """Commit a notice of a made-up tag on `db`'s channel from a foreign sender; return the tag.

    Notices arrive in commit order, so once a listener applied the marker it has applied
    every notice committed before it.
    """
    tag = f"marker:{uuid.uuid4().hex}"
    payload = json.dumps(["test-marker", [tag]])
    async with db.connection() as conn:
        await conn.execute("SELECT pg_notify(%s, %s)", (db.channel, payload))
    return tag


async def settle(writer: Database, reader: Database) -> None:
    """Wait until `reader`'s listener has applied every notice committed so far on the channel."""
    assert isinstance(reader.cache, RecordingCache)
    cache = reader.cache
    marker = await send_marker(writer)
    await eventually(lambda: marker in cache.all_invalidated(), what="the marker notice arrived")
