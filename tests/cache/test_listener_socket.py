"""The listener reads notices from its connection's socket itself (see listener.py): bursts,
notices mixed with queries on the connection, a killed connection and a close mid-burst lose
no notice, leave no callback on a dead socket and raise nothing into the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from cache.helpers import (
    RecordingCache,
    eventually,
    listener_pids,
    open_database,
    send_marker,
)
from darasa_db import Database
from darasa_db.cache.listener import CacheListener


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the event loop's exception handler during the test (must stay empty)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


async def _burst(url: str, channel: str, count: int, *, per_transaction: int = 1) -> set[str]:
    """Commit `count` notices of fresh tags from a foreign sender, `per_transaction` at a time,
    from several connections at once; return the tags."""
    tags = [f"burst:{uuid.uuid4().hex}" for _ in range(count)]
    batches = [tags[i : i + per_transaction] for i in range(0, count, per_transaction)]

    async def send(share: list[list[str]]) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for batch in share:
                async with conn.transaction():
                    for tag in batch:
                        payload = json.dumps(["burst-sender", [tag]])
                        await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    await asyncio.gather(*(send(batches[i::4]) for i in range(4)))
    return set(tags)


@contextlib.asynccontextmanager
async def _listening(url: str, cache: RecordingCache, name: str) -> AsyncIterator[Database]:
    """A Database named `name` whose listener listens, closed afterwards."""
    db = await open_database(url, cache, application_name=name)
    try:
        yield db
    finally:
        await db.close()


async def _reconnected(db: Database, url: str, name: str, old_pid: int) -> None:
    """Wait until `db`'s listener listens again on a new server connection."""

    async def listening_again() -> bool:
        pids = await listener_pids(url, name)
        return db.cache_ready and bool(pids) and old_pid not in pids

    await eventually(listening_again, what="the listener reconnected")


async def _marker_arrives(db: Database, cache: RecordingCache) -> None:
    marker = await send_marker(db)
    await eventually(lambda: marker in cache.all_invalidated(), what="a notice after it")


def _listener_socket(db: Database) -> int | None:
    listener = db._invalidator._listener
    assert listener is not None
    return listener._socket


async def test_a_burst_from_four_connections_arrives_whole(
    darasa_database_url: str, loop_errors: list[dict[str, Any]]
):
    url, cache = darasa_database_url, RecordingCache()
    async with _listening(url, cache, "burst") as db:
        [pid] = await listener_pids(url, "burst")
        sent = await _burst(url, db.channel, 2_000)
        sent |= await _burst(url, db.channel, 600, per_transaction=50)
        await eventually(lambda: sent <= cache.all_invalidated(), what="every burst notice")
        assert len(cache.invalidated) == len(sent)  # each applied once, none twice
        assert await listener_pids(url, "burst") == {pid}
        assert db.cache_ready
    assert loop_errors == []


async def test_notices_of_a_long_payload_and_of_any_text_arrive_intact(
    darasa_database_url: str, loop_errors: list[dict[str, Any]]
):
    cache = RecordingCache()
    tags = [f"user:{'ü' * 2_000}:x", 'user:\u2028"quoted"\\:x', "user:e\u0301:x", "x" * 7_000]
    async with _listening(darasa_database_url, cache, "text") as db:
        async with db.connection() as conn:
            for tag in tags:
                payload = json.dumps(["text-sender", [tag]], ensure_ascii=False)
                await conn.execute("SELECT pg_notify(%s, %s)", (db.channel, payload))
        await _marker_arrives(db, cache)
        assert set(tags) <= cache.all_invalidated()
    assert loop_errors == []


async def test_a_killed_connection_mid_burst_reconnects_and_clears_the_cache(
    darasa_database_url: str, loop_errors: list[dict[str, Any]]
):
    url, cache = darasa_database_url, RecordingCache()
    async with _listening(url, cache, "killed") as db:
        [old_pid] = await listener_pids(url, "killed")
        cache.set(("k",), "value", tags=("t",))
        burst = asyncio.create_task(_burst(url, db.channel, 1_000))
        await asyncio.sleep(0.02)
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await conn.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
        await burst
        await _reconnected(db, url, "killed", old_pid)
        assert ("k",) not in cache  # notices were missed meanwhile: the cache was dropped
        await _marker_arrives(db, cache)  # and notices arrive again
    assert loop_errors == []


async def test_close_during_a_burst_unwatches_the_socket(
    darasa_database_url: str, loop_errors: list[dict[str, Any]]
):
    db = await open_database(darasa_database_url, RecordingCache(), application_name="closing")
    socket = _listener_socket(db)
    assert socket is not None
    burst = asyncio.create_task(_burst(darasa_database_url, db.channel, 1_000))
    await asyncio.sleep(0.02)
    await db.close()
    await burst
    assert not asyncio.get_running_loop().remove_reader(socket)  # nothing left watching it
    assert await listener_pids(darasa_database_url, "closing") == set()
    assert loop_errors == []


async def test_a_payload_nested_past_the_recursion_limit_clears_the_cache_only(
    darasa_database_url: str, loop_errors: list[dict[str, Any]]
):
    url, cache = darasa_database_url, RecordingCache()
    async with _listening(url, cache, "nested") as db:
        [pid] = await listener_pids(url, "nested")
        cache.set(("k",), "value", tags=("t",))
        async with db.connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (db.channel, "[" * 7_000))
        await eventually(lambda: ("k",) not in cache, what="the unreadable notice cleared it")
        await _marker_arrives(db, cache)
        assert await listener_pids(url, "nested") == {pid}
    assert loop_errors == []


class _Exploding(RecordingCache):
    """A host's cache whose `invalidate` fails for one tag."""

    def invalidate(self, *tags: str) -> None:
        if "explode" in tags:
            raise RuntimeError("the host's cache failed")
        super().invalidate(*tags)


async def test_a_failure_while_applying_a_notice_reconnects_with_an_empty_cache(
    darasa_database_url: str, loop_errors: list[dict[str, Any]]
):
    url, cache = darasa_database_url, _Exploding()
    async with _listening(url, cache, "exploding") as db:
        [old_pid] = await listener_pids(url, "exploding")
        cache.set(("k",), "value", tags=("t",))
        async with db.connection() as conn:
            payload = json.dumps(["another-sender", ["explode"]])
            await conn.execute("SELECT pg_notify(%s, %s)", (db.channel, payload))
        await _reconnected(db, url, "exploding", old_pid)
        assert ("k",) not in cache
        await _marker_arrives(db, cache)
    assert loop_errors == []


async def test_stop_while_the_replicas_settle_runs_leaves_nothing_watching(
    darasa_database_url: str, loop_errors: list[dict[str, Any]]
):
    url, channel = darasa_database_url, f"settle_{uuid.uuid4().hex}"
    settling: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def settle(conn: psycopg.AsyncConnection[Any]) -> None:  # a query, as the router's is
        if not settling.done():
            settling.set_result(conn.pgconn.socket)
        await conn.execute("SELECT pg_sleep(30)")

    async def send(payload: str) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    probes = iter(range(1_000))

    def probe() -> tuple[str, str]:
        token = f"probe:{next(probes)}"
        return token, json.dumps([token, []])

    listener = CacheListener(
        channel=channel,
        connect=lambda: psycopg.AsyncConnection.connect(url, autocommit=True),
        send=send,
        probe=probe,
        receive=lambda payload: json.loads(payload)[0],
        reset=lambda: None,
        timeout=5.0,
        settle=settle,
    )
    socket = await asyncio.wait_for(settling, 10)  # the probe arrived and is being settled
    started = asyncio.get_running_loop().time()
    await listener.stop()
    assert asyncio.get_running_loop().time() - started < 5  # the settle's query was cancelled
    assert listener._socket is None
    assert not asyncio.get_running_loop().remove_reader(socket)  # nothing left watching it
    assert loop_errors == []
