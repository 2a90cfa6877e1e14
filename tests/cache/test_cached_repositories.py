"""Repositories through the cache: server-counted reads, exact invalidations, transactions."""

from __future__ import annotations

import pytest

from cache.helpers import (
    RecordingCache,
    job_info_input,
    listener_pids,
    make_user,
    open_database,
    table_scans,
)
from darasa_db import ConflictError, Database, TagCache
from darasa_db.schemas import (
    ConversationCreate,
    DocumentCreate,
    InterviewCreate,
    InterviewUpdate,
    JobInfoUpdate,
    Message,
    QuestionCreate,
    User,
    UserCreate,
    UserUpdate,
)

ENTITIES = ("users", "job_infos", "questions", "interviews", "documents", "conversations")


# ---------------------------------------------------------------------- counted at the server
@pytest.mark.embedded_smoke
async def test_repeated_get_reaches_the_database_once(darasa_database_url):
    # One pooled connection, so one flush request covers every statement it ran.
    db = await open_database(darasa_database_url, TagCache(), pool_size=1, max_overflow=0)
    try:
        user = await make_user(db, "alice")
        job = await db.job_infos.create(user.id, job_info_input())
        before = await table_scans(db, darasa_database_url, "job_info")
        results = [await db.job_infos.get(job.id, user_id=user.id) for _ in range(5)]
        after = await table_scans(db, darasa_database_url, "job_info")
    finally:
        await db.close()
    assert results == [job] * 5
    assert after - before == 1
    assert db.cache is not None
    assert db.cache.stats.hits == 4


async def test_without_a_cache_every_get_reaches_the_database(darasa_database_url):
    db = await open_database(darasa_database_url, None, pool_size=1, max_overflow=0)
    try:
        user = await make_user(db, "alice")
        job = await db.job_infos.create(user.id, job_info_input())
        before = await table_scans(db, darasa_database_url, "job_info")
        results = [await db.job_infos.get(job.id, user_id=user.id) for _ in range(5)]
        after = await table_scans(db, darasa_database_url, "job_info")
        assert await listener_pids(darasa_database_url, "darasa-db") == set()  # no listener
    finally:
        await db.close()
    assert results == [job] * 5
    assert after - before == 5


async def test_cache_none_reads_and_writes_like_the_database(darasa_database_url):
    db = await open_database(darasa_database_url, None)
    try:
        user = await make_user(db, "alice")
        job = await db.job_infos.create(user.id, job_info_input("Acme"))
        assert db.cache is None
        assert not db.cache_ready
        assert await db.job_infos.get(job.id, user_id=user.id) == job
        await db.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=user.id)
        renamed = await db.job_infos.get(job.id, user_id=user.id)
        assert renamed is not None
        assert renamed.name == "Globex"
        assert [j.name for j in await db.job_infos.list_for_user(user.id)] == ["Globex"]
    finally:
        await db.close()


async def test_reads_before_the_listener_listens_bypass_the_cache(darasa_database_url):
    setup = await open_database(darasa_database_url, None)
    user = await make_user(setup, "alice")
    job = await setup.job_infos.create(user.id, job_info_input())
    await setup.close()
    cache = TagCache()
    db = Database.from_url(darasa_database_url, cache=cache, test_mode=True)
    try:
        assert await db.job_infos.get(job.id, user_id=user.id) == job  # opens the pool
        assert len(cache) == 0  # served, but not stored: no notice could have reached us yet
    finally:
        await db.close()


# ---------------------------------------------------------------------- invalidation
async def test_cached_reads_see_each_committed_write(db: Database, alice: User):
    job = await db.job_infos.create(alice.id, job_info_input("Acme"))
    assert [j.id for j in await db.job_infos.list_for_user(alice.id)] == [job.id]
    assert await db.job_infos.get(job.id, user_id=alice.id) == job
    assert await db.job_infos.get(job.id, user_id=alice.id) == job  # from the cache

    second = await db.job_infos.create(alice.id, job_info_input("Initech"))
    assert [j.id for j in await db.job_infos.list_for_user(alice.id)] == [second.id, job.id]

    updated = await db.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=alice.id)
    assert await db.job_infos.get(job.id, user_id=alice.id) == updated
    assert [j.name for j in await db.job_infos.list_for_user(alice.id)] == ["Initech", "Globex"]

    assert await db.job_infos.delete(job.id, user_id=alice.id)
    assert await db.job_infos.get(job.id, user_id=alice.id) is None
    assert [j.id for j in await db.job_infos.list_for_user(alice.id)] == [second.id]


async def test_each_write_invalidates_exactly_its_documented_tags(
    db: Database, cache: RecordingCache, alice: User
):
    u = alice.id

    async def expect(write, *tags: str):
        cache.invalidated.clear()
        result = await write
        assert cache.invalidated == [frozenset(tags)]
        return result

    job = await expect(db.job_infos.create(u, job_info_input()), f"user:{u}:job_infos")
    j = job.id
    await expect(
        db.job_infos.update(j, JobInfoUpdate(name="Globex"), user_id=u),
        f"user:{u}:job_infos",
        f"id:{j}:job_infos",
    )
    question = await expect(
        db.questions.create(j, QuestionCreate(text="Why?", difficulty="easy"), user_id=u),
        f"user:{u}:questions",
        f"job_info:{j}:questions",
    )
    await expect(
        db.questions.delete(question.id, user_id=u),
        f"user:{u}:questions",
        f"id:{question.id}:questions",
    )
    interview = await expect(
        db.interviews.create(j, InterviewCreate(duration="15 minutes"), user_id=u),
        f"user:{u}:interviews",
        f"job_info:{j}:interviews",
    )
    await expect(
        db.interviews.update(interview.id, InterviewUpdate(feedback="Good"), user_id=u),
        f"user:{u}:interviews",
        f"id:{interview.id}:interviews",
    )
    await expect(
        db.job_infos.delete(j, user_id=u),
        f"user:{u}:job_infos",
        f"id:{j}:job_infos",
        f"user:{u}:questions",
        f"user:{u}:interviews",
        f"job_info:{j}:questions",
        f"job_info:{j}:interviews",
    )
    document = await expect(
        db.documents.create(u, DocumentCreate(title="CV", content="...")), f"user:{u}:documents"
    )
    await expect(
        db.documents.create_many(u, [DocumentCreate(title="a", content="b")]),
        f"user:{u}:documents",
    )
    await expect(
        db.documents.delete(document.id, user_id=u),
        f"user:{u}:documents",
        f"id:{document.id}:documents",
    )
    chat = await expect(
        db.conversations.create(u, ConversationCreate(title="Chat")), f"user:{u}:conversations"
    )
    for write in (
        db.conversations.append_messages(chat.id, [Message(role="user", content="hi")], user_id=u),
        db.conversations.rename(chat.id, "Renamed", user_id=u),
        db.conversations.delete(chat.id, user_id=u),
    ):
        await expect(write, f"user:{u}:conversations", f"id:{chat.id}:conversations")
    bob = await expect(
        db.users.create(UserCreate(id="user_bob", email="bob@example.com", name="Bob")),
        "users",
        "id:user_bob:users",
    )
    await expect(db.users.update(bob.id, UserUpdate(name="Robert")), "users", "id:user_bob:users")
    await expect(
        db.users.delete(bob.id),
        "users",
        "id:user_bob:users",
        *(f"user:user_bob:{entity}" for entity in ENTITIES),
    )


async def test_write_that_changes_no_row_invalidates_nothing(
    db: Database, cache: RecordingCache, alice: User
):
    bob = await make_user(db, "bob")
    job = await db.job_infos.create(alice.id, job_info_input())
    cache.invalidated.clear()
    assert not await db.job_infos.delete(job.id, user_id=bob.id)  # not Bob's
    assert cache.invalidated == []


async def test_failed_write_invalidates_its_tags_in_case_it_committed(
    db: Database, cache: RecordingCache, alice: User
):
    cache.invalidated.clear()
    with pytest.raises(ConflictError):
        await db.users.create(UserCreate(email="alice@example.com", name="Copycat", id="user_x"))
    assert cache.invalidated == [frozenset({"users", "id:user_x:users"})]


# ---------------------------------------------------------------------- transactions
async def test_write_in_a_transaction_invalidates_only_after_commit(
    db: Database, cache: RecordingCache, alice: User
):
    job = await db.job_infos.create(alice.id, job_info_input("Acme"))
    key = ("job_infos.get", job.id, alice.id)
    assert await db.job_infos.get(job.id, user_id=alice.id) == job
    cache.invalidated.clear()
    async with db.transaction() as tx:
        await tx.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=alice.id)
        assert cache.invalidated == []
        assert key in cache
        assert await db.job_infos.get(job.id, user_id=alice.id) == job  # committed state
    assert cache.invalidated == [
        frozenset({f"user:{alice.id}:job_infos", f"id:{job.id}:job_infos"})
    ]
    assert key not in cache
    fresh = await db.job_infos.get(job.id, user_id=alice.id)
    assert fresh is not None
    assert fresh.name == "Globex"


async def test_rolled_back_write_invalidates_nothing_and_the_cached_value_is_served(
    db: Database, cache: RecordingCache, alice: User
):
    job = await db.job_infos.create(alice.id, job_info_input("Acme"))
    assert await db.job_infos.get(job.id, user_id=alice.id) == job
    cache.invalidated.clear()
    hits = cache.stats.hits

    async def change_then_give_up() -> None:
        async with db.transaction() as tx:
            await tx.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=alice.id)
            await tx.conversations.create(alice.id, ConversationCreate(title="Chat"))
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await change_then_give_up()
    assert cache.invalidated == []
    assert await db.job_infos.get(job.id, user_id=alice.id) == job
    assert cache.stats.hits == hits + 1
    assert await db.conversations.list_for_user(alice.id) == []


async def test_reads_inside_a_transaction_bypass_the_cache(
    db: Database, cache: RecordingCache, alice: User
):
    job = await db.job_infos.create(alice.id, job_info_input("Acme"))
    assert await db.job_infos.get(job.id, user_id=alice.id) == job
    assert await db.job_infos.list_for_user(alice.id) == [job]
    before = cache.stats
    async with db.transaction() as tx:
        await tx.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=alice.id)
        mine = await tx.job_infos.get(job.id, user_id=alice.id)
        assert mine is not None
        assert mine.name == "Globex"
        assert [j.name for j in await tx.job_infos.list_for_user(alice.id)] == ["Globex"]
        during = cache.stats
        assert (during.hits, during.misses, during.loads) == (
            before.hits,
            before.misses,
            before.loads,
        )
        assert await db.job_infos.get(job.id, user_id=alice.id) == job  # nothing published
    after = await db.job_infos.get(job.id, user_id=alice.id)
    assert after is not None
    assert after.name == "Globex"
