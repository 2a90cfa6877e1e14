"""Pooled connections keep a cursor per statement (psycopg sets up a new cursor's adapters on
every call): a kept cursor answers each call with that call's rows, whatever cut the calls
before it short, and no connection holds a result of many rows between calls."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest

from darasa_db import Database, DatabaseSettings
from darasa_db._connector import PooledConnection
from darasa_db.schemas import ConversationCreate, JobInfo, Message
from integration.helpers import job_info_input, make_user


@pytest.fixture
async def one_connection(darasa_database_url: str) -> AsyncIterator[Database]:
    """A `Database` whose pool has one connection: every call runs on its kept cursors."""
    settings = DatabaseSettings(
        url=darasa_database_url, test_mode=False, pool_size=1, max_overflow=0
    )
    async with Database(settings, cache=None) as db:
        yield db


async def _kept_rows(db: Database) -> list[int]:
    """How many rows each cursor the pool's connection keeps is holding."""
    async with db.connection() as conn:
        assert isinstance(conn, PooledConnection)
        return [
            cur.pgresult.ntuples if cur.pgresult is not None else 0 for cur in conn.kept.values()
        ]


async def test_a_connection_keeps_cursors_but_no_result_of_many_rows(one_connection: Database):
    db = one_connection
    user = await make_user(db, "kept")
    jobs = [await db.job_infos.create(user.id, job_info_input(name=f"job {n}")) for n in range(30)]
    for job in jobs[:3]:
        assert await db.job_infos.get(job.id, user_id=user.id) == job
    kept = await _kept_rows(db)
    assert kept
    assert max(kept) == 1

    listed = await db.job_infos.list_for_user(user.id, limit=30)
    assert sorted(j.id for j in listed) == sorted(j.id for j in jobs)
    assert max(await _kept_rows(db)) == 1  # the list's 30 rows went with its cursor


async def test_calls_cut_short_at_random_points_leave_every_later_call_its_own_rows(
    one_connection: Database,
):
    """Gets, lists and appends on one connection, many cancelled at a random point (a request
    timeout): each call that completes returns exactly its own rows, never a previous call's."""
    db = one_connection
    rng = random.Random(20261206)
    user = await make_user(db, "cut")
    jobs = [await db.job_infos.create(user.id, job_info_input(name=f"job {n}")) for n in range(8)]
    conversation = await db.conversations.create(
        user.id, ConversationCreate(title="t", messages=[Message(role="system", content="s")])
    )
    by_id: dict[object, JobInfo] = {job.id: job for job in jobs}
    appended = 0
    cancelled = completed = 0

    for n in range(400):
        job, limit = rng.choice(jobs), rng.randint(1, 8)
        kind = rng.choice(["get", "list", "append"])
        if kind == "get":
            work = asyncio.ensure_future(db.job_infos.get(job.id, user_id=user.id))
        elif kind == "list":
            work = asyncio.ensure_future(db.job_infos.list_for_user(user.id, limit=limit))
        else:
            work = asyncio.ensure_future(
                db.conversations.append_messages(
                    conversation.id, [Message(role="user", content=f"m{n}")], user_id=user.id
                )
            )
        if rng.random() < 0.6:  # cut it short somewhere between its first step and its end
            for _ in range(rng.randint(0, 6)):
                await asyncio.sleep(0)
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            cancelled += work.cancelled()
            continue
        result = await work
        completed += 1
        if kind == "get":
            assert result == job
        elif kind == "list":
            assert len({found.id for found in result}) == len(result) == limit
            assert all(by_id[found.id] == found for found in result)
        else:
            appended += 1
            assert result.messages[-1].content == f"m{n}"

    assert cancelled > 100
    assert completed > 100
    stored = await db.conversations.get(conversation.id, user_id=user.id)
    assert stored is not None
    assert len(stored.messages) >= appended + 1
    for job in jobs:  # and afterwards, on the same connection, every answer is still right
        assert await db.job_infos.get(job.id, user_id=user.id) == job
