"""Two Databases on one database (two processes): NOTIFY keeps their caches coherent."""

from __future__ import annotations

import asyncio
import functools

import psycopg
import pytest

from cache.helpers import (
    RecordingCache,
    eventually,
    job_info_input,
    listener_pids,
    open_database,
    send_marker,
    settle,
)
from darasa_db import Database
from darasa_db.cache import listener as listener_module
from darasa_db.schemas import JobInfoUpdate, User


def recording(db: Database) -> RecordingCache:
    assert isinstance(db.cache, RecordingCache)
    return db.cache


@pytest.mark.embedded_smoke
async def test_write_through_one_database_is_seen_by_a_cached_read_in_the_other(
    db: Database, other_db: Database, alice: User
):
    job = await db.job_infos.create(alice.id, job_info_input("Acme"))
    await settle(db, other_db)  # B must not be loading while A's own notices arrive
    assert await other_db.job_infos.get(job.id, user_id=alice.id) == job
    assert await other_db.job_infos.get(job.id, user_id=alice.id) == job
    assert recording(other_db).stats.hits == 1  # B serves it from its cache

    await db.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=alice.id)

    async def b_sees_the_write() -> bool:
        seen = await other_db.job_infos.get(job.id, user_id=alice.id)
        return seen is not None and seen.name == "Globex"

    await eventually(b_sees_the_write, within=1.0, what="B's cached read sees A's update")
    assert {f"id:{job.id}:job_infos"} <= recording(other_db).all_invalidated()


async def test_rolled_back_write_in_one_database_invalidates_nothing_in_the_other(
    db: Database, other_db: Database, alice: User
):
    job = await db.job_infos.create(alice.id, job_info_input("Acme"))
    await settle(db, other_db)  # B must not be loading while A's own notices arrive
    key = ("job_infos.get", job.id, alice.id)
    assert await other_db.job_infos.get(job.id, user_id=alice.id) == job
    b_cache = recording(other_db)
    assert key in b_cache
    b_cache.invalidated.clear()

    async def update_then_roll_back() -> None:
        async with db.transaction() as tx:
            await tx.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=alice.id)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        await update_then_roll_back()
    marker = await send_marker(db)  # committed after the rollback: arrives after any notice
    await eventually(lambda: marker in b_cache.all_invalidated(), what="B got the marker")

    assert b_cache.invalidated == [frozenset({marker})]
    assert key in b_cache
    assert await other_db.job_infos.get(job.id, user_id=alice.id) == job


async def test_notice_reaches_the_other_database_only_when_the_transaction_commits(
    db: Database, other_db: Database, alice: User
):
    job = await db.job_infos.create(alice.id, job_info_input("Acme"))
    await settle(db, other_db)  # B must not be loading while A's own notices arrive
    key = ("job_infos.get", job.id, alice.id)
    b_cache = recording(other_db)
    async with db.transaction() as tx:
        await tx.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=alice.id)
        assert await other_db.job_infos.get(job.id, user_id=alice.id) == job
        marker = await send_marker(db)  # another connection: commits while tx is open
        await eventually(lambda: marker in b_cache.all_invalidated(), what="B got the marker")
        assert key in b_cache  # the open transaction's notice has not been sent
    await eventually(lambda: key not in b_cache, within=1.0, what="B dropped the entry")
    seen = await other_db.job_infos.get(job.id, user_id=alice.id)
    assert seen is not None
    assert seen.name == "Globex"


async def test_listener_reconnect_clears_the_cache_and_caching_resumes(
    darasa_database_url: str, db: Database, other_db: Database, alice: User
):
    job = await db.job_infos.create(alice.id, job_info_input("Acme"))
    await settle(db, other_db)  # B must not be loading while A's own notices arrive
    key = ("job_infos.get", job.id, alice.id)
    assert await other_db.job_infos.get(job.id, user_id=alice.id) == job
    b_cache = recording(other_db)
    assert key in b_cache
    [old_pid] = await listener_pids(darasa_database_url, "b")

    async with await psycopg.AsyncConnection.connect(darasa_database_url, autocommit=True) as c:
        await c.execute("SELECT pg_terminate_backend(%s)", (old_pid,))

    await eventually(lambda: key not in b_cache, what="B's cache was cleared")

    async def listening_again() -> bool:
        pids = await listener_pids(darasa_database_url, "b")
        return other_db.cache_ready and bool(pids) and old_pid not in pids

    await eventually(listening_again, what="B's listener reconnected")
    assert len(b_cache) == 0  # entries stored before the LISTEN could be stale: none are kept
    assert await other_db.job_infos.get(job.id, user_id=alice.id) == job
    hits = b_cache.stats.hits
    assert await other_db.job_infos.get(job.id, user_id=alice.id) == job
    assert b_cache.stats.hits == hits + 1  # caching resumed

    await db.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=alice.id)
    await eventually(lambda: key not in b_cache, within=1.0, what="B hears A again")


async def test_heartbeats_keep_the_listener_connected_and_lose_no_notice(
    darasa_database_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(
        listener_module.CacheListener,
        "__init__",
        functools.partialmethod(listener_module.CacheListener.__init__, heartbeat=0.02),
    )
    cache = RecordingCache()
    b = await open_database(darasa_database_url, cache, application_name="b")
    try:
        [pid] = await listener_pids(darasa_database_url, "b")
        sent = set()
        for _ in range(40):  # spread over many heartbeats
            sent.add(await send_marker(b))
            await asyncio.sleep(0.005)
        await eventually(lambda: sent <= cache.all_invalidated(), what="every marker arrived")
        assert await listener_pids(darasa_database_url, "b") == {pid}  # never reconnected
        assert b.cache_ready
    finally:
        await b.close()
