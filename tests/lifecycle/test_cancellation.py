"""Cancelled calls, the way request timeouts cancel them: the pool keeps every slot, the server
keeps no stray connection, and nothing from a cancelled transaction block commits."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from darasa_db import DarasaDBError, Database, DatabaseSettings
from darasa_db.schemas import JobInfoCreate, UserUpdate, UserUpsert
from lifecycle.helpers import server_connections, settled_connections

POOL = 3
OVERFLOW = 3


def _job(name: str) -> JobInfoCreate:
    return JobInfoCreate(name=name, experience_level="junior", description="d")


async def _block(db: Database, user_id: str, name: str, pause: float) -> str:
    async with db.transaction() as tx:
        await tx.job_infos.create(user_id, _job(name))
        await asyncio.sleep(pause)
        await tx.users.update(user_id, UserUpdate(name=name))
        await asyncio.sleep(pause)
    return name


async def test_a_cancellation_storm_leaves_the_pool_whole_and_commits_no_cancelled_block(
    darasa_database_url: str,
):
    rng = random.Random(20261205)
    settings = DatabaseSettings(
        url=darasa_database_url,
        test_mode=False,
        pool_size=POOL,
        max_overflow=OVERFLOW,
        application_name="storm",
        pool_timeout=5,
    )
    db = Database(settings)  # with the cache: its listener holds one connection of the budget
    user = await db.users.upsert(UserUpsert(id="storm", email="storm@example.com", name="S"))
    completed: set[str] = set()
    cancelled: set[str] = set()

    async def one(n: int) -> None:
        name = f"block-{n}"
        kind = rng.choice(["wait_for", "cancel", "pool_write", "pool_read"])
        timeout = rng.uniform(0.0, 0.02)
        if kind == "pool_write":
            work = db.users.update(user.id, UserUpdate(name=name))
        elif kind == "pool_read":
            work = db.job_infos.list_for_user(user.id, limit=5)
        else:
            work = _block(db, user.id, name, rng.uniform(0, 0.002))
        task = asyncio.ensure_future(work)
        try:
            if kind == "cancel":
                await asyncio.sleep(timeout)
                task.cancel()
                await task
            else:
                await asyncio.wait_for(task, timeout)
        except (TimeoutError, asyncio.CancelledError):
            if kind in ("wait_for", "cancel"):
                cancelled.add(name)
            return
        if kind in ("wait_for", "cancel"):
            completed.add(name)

    for start in range(0, 400, 8):  # bursts of concurrent calls, like a busy service
        await asyncio.gather(*(one(n) for n in range(start, start + 8)))

    assert len(cancelled) > 50, "the storm must cancel many blocks"
    assert len(completed) > 5, "and let some finish"

    pool = await db.pool()
    max_size = POOL + OVERFLOW - 1  # one connection of the budget is the cache listener's
    held = [await pool.getconn(timeout=5) for _ in range(max_size)]  # every slot still usable
    for conn in held:
        await pool.putconn(conn)
    stats = pool.get_stats()
    assert stats["pool_size"] <= max_size
    assert stats.get("requests_waiting", 0) == 0
    assert await server_connections(darasa_database_url, "storm") <= POOL + OVERFLOW

    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT name FROM darasa.job_info WHERE user_id = %s AND name LIKE 'block-%%'",
            (user.id,),
        )
        committed = {row[0] for row in await cur.fetchall()}
    assert committed == completed  # every finished block, and nothing from a cancelled one
    assert await db.users.get(user.id) is not None  # still serving calls

    await db.close()
    assert await settled_connections(darasa_database_url, "storm") == 0


async def test_a_call_cancelled_inside_a_block_fails_the_whole_block(darasa_db: Database):
    user = await darasa_db.users.upsert(UserUpsert(id="u", email="u@example.com", name="U"))

    async def block_that_swallows_a_cancellation() -> None:
        async with darasa_db.transaction() as tx:
            await tx.job_infos.create(user.id, _job("before"))
            call = asyncio.ensure_future(tx.users.update(user.id, UserUpdate(name="cancelled")))
            await asyncio.sleep(0)
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call  # a caller that swallows it must still not commit half a block

    with pytest.raises(DarasaDBError, match="was cancelled, so it was rolled back"):
        await block_that_swallows_a_cancellation()
    assert await darasa_db.job_infos.list_for_user(user.id) == []
    fetched = await darasa_db.users.get(user.id)
    assert fetched is not None
    assert fetched.name == "U"
