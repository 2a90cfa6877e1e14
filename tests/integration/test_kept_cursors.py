"""Pooled connections keep a cursor per statement (psycopg sets up a new cursor's adapters on
every call): a kept cursor answers each call with that call's rows, whatever cut the calls
before it short, and no connection holds a result, or a long input, between calls."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg import AsyncCursor

from darasa_db import Database, DatabaseSettings
from darasa_db._connector import PooledConnection
from darasa_db.schemas import ConversationCreate, DocumentCreate, JobInfo, Message
from integration.helpers import job_info_input, make_user


@pytest.fixture
async def one_connection(darasa_database_url: str) -> AsyncIterator[Database]:
    """A `Database` whose pool has one connection: every call runs on its kept cursors."""
    settings = DatabaseSettings(
        url=darasa_database_url, test_mode=False, pool_size=1, max_overflow=0
    )
    async with Database(settings, cache=None) as db:
        yield db


async def _kept(db: Database) -> dict[tuple[bytes, object, bool], AsyncCursor[Any]]:
    """The cursors the pool's one connection keeps, by statement, row factory and format."""
    async with db.connection() as conn:
        assert isinstance(conn, PooledConnection)
        return dict(conn.kept)


async def test_a_connection_keeps_its_cursors_but_no_result(one_connection: Database):
    db = one_connection
    user = await make_user(db, "kept")
    jobs = [await db.job_infos.create(user.id, job_info_input(name=f"job {n}")) for n in range(30)]
    assert await db.job_infos.get(jobs[0].id, user_id=user.id) == jobs[0]
    first = await _kept(db)
    for job in jobs[1:4]:  # the same statements again: on the same cursors
        assert await db.job_infos.get(job.id, user_id=user.id) == job
    assert {key: id(cur) for key, cur in (await _kept(db)).items()} == {
        key: id(cur) for key, cur in first.items()
    }

    listed = await db.job_infos.list_for_user(user.id, limit=30)
    assert sorted(j.id for j in listed) == sorted(j.id for j in jobs)
    kept = await _kept(db)
    assert len(kept) == len(first) + 1  # the list's cursor is kept too
    for cur in kept.values():  # and no result stays in memory, 30 rows or one
        assert cur.pgresult is not None
        assert cur.pgresult.ntuples == 0


async def test_a_call_with_a_long_input_does_not_keep_its_cursor(one_connection: Database):
    """psycopg's cursor holds the last call's parameters: a long one is not kept with it."""
    db = one_connection
    user = await make_user(db, "long")
    short = await db.documents.create(user.id, DocumentCreate(title="t", content="c"))
    kept = await _kept(db)
    inserts = [key for key in kept if b"INSERT INTO darasa.documents" in key[0]]
    assert len(inserts) == 1
    long = await db.documents.create(user.id, DocumentCreate(title="t", content="x" * 70_000))
    assert long.content == "x" * 70_000
    assert inserts[0] not in await _kept(db)
    assert await db.documents.get(short.id, user_id=user.id) == short


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
