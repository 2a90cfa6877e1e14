"""Property: whatever reads and writes interleave, a cached read equals an uncached one.

Two Databases share one database: `cached` (a `TagCache`) and `reference` (`cache=None`).
Writes go through either, on the pool or in a transaction that commits or rolls back, some
racing cached reads. After a write through the reference we wait for its notice (the documented
delay); then, and after every write through the cached Database, every cached read must equal
the reference's read of the database at that moment.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache.helpers import RecordingCache, job_info_input, open_database, settle
from darasa_db import Database, NotFoundError
from darasa_db.schemas import ConversationCreate, JobInfoUpdate, Message, UserUpsert


class Read(NamedTuple):
    kind: str  # job_get, job_list, chat_get, chat_list
    user: int
    item: int
    limit: int


class Write(NamedTuple):
    kind: str  # job_create, job_update, job_delete, chat_create, chat_append, ...
    user: int
    item: int
    via: str  # cached | reference
    mode: str  # pool | commit | rollback


class Race(NamedTuple):
    write: Write
    reads: tuple[Read, ...]


READS = ("job_get", "job_list", "chat_get", "chat_list")
WRITES = (
    "job_create",
    "job_update",
    "job_delete",
    "chat_create",
    "chat_append",
    "chat_rename",
    "chat_delete",
)

users = st.integers(0, 1)
items = st.integers(0, 20)
reads = st.builds(Read, st.sampled_from(READS), users, items, st.sampled_from([2, 50]))
writes = st.builds(
    Write,
    st.sampled_from(WRITES),
    users,
    items,
    st.sampled_from(["cached", "reference"]),
    st.sampled_from(["pool", "commit", "rollback"]),
)
races = st.builds(
    Race,
    st.builds(
        Write,
        st.sampled_from(WRITES),
        users,
        items,
        st.sampled_from(["cached", "reference"]),
        st.just("pool"),
    ),
    st.lists(reads, min_size=1, max_size=4).map(tuple),
)
operations = st.lists(st.one_of(reads, reads, writes, races), min_size=1, max_size=30)


class Rollback(Exception):
    pass


@dataclass
class World:
    """The ids the operations pick from (deleted and rolled-back ones stay: reads of gone rows)."""

    users: list[str]
    jobs: list[uuid.UUID] = field(default_factory=list)
    chats: list[uuid.UUID] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self, ids: list[uuid.UUID], item: int) -> uuid.UUID:
        return ids[item % len(ids)] if ids else uuid.UUID(int=item)


def read_call(op: Read, world: World) -> Callable[[Any], Awaitable[Any]]:
    user = world.users[op.user]
    if op.kind == "job_get":
        job = world.pick(world.jobs, op.item)
        return lambda repos: repos.job_infos.get(job, user_id=user)
    if op.kind == "job_list":
        return lambda repos: repos.job_infos.list_for_user(user, limit=op.limit)
    chat = world.pick(world.chats, op.item)
    if op.kind == "chat_get":
        return lambda repos: repos.conversations.get(chat, user_id=user)
    return lambda repos: repos.conversations.list_for_user(user, limit=op.limit)


async def run_write(op: Write, world: World, repos: Any) -> None:
    user = world.users[op.user]
    n = next(world.counter)
    job = world.pick(world.jobs, op.item)
    chat = world.pick(world.chats, op.item)
    try:
        if op.kind == "job_create":
            world.jobs.append((await repos.job_infos.create(user, job_info_input(f"job {n}"))).id)
        elif op.kind == "job_update":
            await repos.job_infos.update(job, JobInfoUpdate(name=f"renamed {n}"), user_id=user)
        elif op.kind == "job_delete":
            await repos.job_infos.delete(job, user_id=user)
        elif op.kind == "chat_create":
            chat_input = ConversationCreate(title=f"chat {n}")
            world.chats.append((await repos.conversations.create(user, chat_input)).id)
        elif op.kind == "chat_append":
            message = Message(role="user", content=f"message {n}")
            await repos.conversations.append_messages(chat, [message], user_id=user)
        elif op.kind == "chat_rename":
            await repos.conversations.rename(chat, f"title {n}", user_id=user)
        else:
            await repos.conversations.delete(chat, user_id=user)
    except NotFoundError:
        pass  # not this user's row, or gone: nothing changed


async def check_reads(cached: Database, reference: Database, ops: tuple[Read, ...], world: World):
    for op in ops:
        call = read_call(op, world)
        assert await call(cached) == await call(reference), op


async def scenario(url: str, ops: list[Read | Write | Race]) -> None:
    cached = await open_database(url, RecordingCache())
    reference = await open_database(url, None)
    try:
        suffix = uuid.uuid4().hex[:8]
        world = World([f"user_{i}_{suffix}" for i in range(2)])
        for i, user_id in enumerate(world.users):
            await reference.users.upsert(
                UserUpsert(id=user_id, email=f"p{i}_{suffix}@example.com", name="P")
            )
        await settle(reference, cached)
        all_reads = tuple(Read(kind, u, 0, 50) for kind in READS for u in (0, 1))
        for op in ops:
            if isinstance(op, Read):
                await check_reads(cached, reference, (op,), world)
            elif isinstance(op, Write):
                via = cached if op.via == "cached" else reference
                if op.mode == "pool":
                    await run_write(op, world, via)
                else:
                    try:
                        async with via.transaction() as tx:
                            await run_write(op, world, tx)
                            # Meanwhile the committed state is what both pools read.
                            await check_reads(cached, reference, all_reads, world)
                            if op.mode == "rollback":
                                raise Rollback
                    except Rollback:
                        pass
                if via is reference:
                    await settle(reference, cached)
                await check_reads(cached, reference, all_reads, world)
            else:
                calls = [read_call(r, world) for r in op.reads]
                before = [await call(reference) for call in calls]
                via = cached if op.write.via == "cached" else reference
                *_, raced = await asyncio.gather(
                    run_write(op.write, world, via),
                    asyncio.gather(*(call(cached) for call in calls)),
                )
                after = [await call(reference) for call in calls]
                for got, old, new in zip(raced, before, after, strict=True):
                    assert got in (old, new)
                if via is reference:
                    await settle(reference, cached)
                await check_reads(cached, reference, op.reads + all_reads, world)
    finally:
        await cached.close()
        await reference.close()


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_cached_reads_always_equal_uncached_reads(darasa_database_url, ops):
    # A fresh event loop per example, in a worker thread: pytest-asyncio's loop is left alone.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, scenario(darasa_database_url, ops)).result()
