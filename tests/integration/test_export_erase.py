"""`users.export` and `users.erase`: a user's data copied out (GDPR art. 20), erased (art. 17)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import psycopg
import pytest

from cache.helpers import RecordingCache, eventually, open_database
from darasa_db import Database, NotFoundError
from darasa_db.cache.tags import ENTITIES, user_tag
from darasa_db.schemas import (
    ConversationCreate,
    ErasureReport,
    InterviewCreate,
    InterviewUpdate,
    QuestionCreate,
    UserUpdate,
)
from integration.helpers import (
    document_input,
    job_info_input,
    make_user,
    message,
    row_counts,
)


async def fill(db: Database, name: str, seed: int) -> str:
    """A user with rows in every table: 2 job infos with 3 questions and 2 interviews between
    them, 3 documents (one without an embedding), 2 conversations with messages."""
    user = await make_user(db, name)
    await db.users.update(user.id, UserUpdate(password_hash="argon2id$secret"))
    jobs = [
        await db.job_infos.create(user.id, job_info_input(name=f"{name} job {n}")) for n in range(2)
    ]
    for n in range(3):
        await db.questions.create(
            jobs[n % 2].id,
            QuestionCreate(text=f"{name} question {n}", difficulty="hard"),
            user_id=user.id,
        )
    for job in jobs:
        interview = await db.interviews.create(
            job.id, InterviewCreate(duration="15 minutes"), user_id=user.id
        )
        await db.interviews.update(
            interview.id, InterviewUpdate(feedback=f"{name}: good"), user_id=user.id
        )
    await db.documents.create_many(
        user.id,
        [document_input(seed + n) for n in range(2)] + [document_input(seed + 9, embedding=None)],
    )
    for n in range(2):
        conversation = await db.conversations.create(
            user.id, ConversationCreate(title=f"{name} chat {n}")
        )
        await db.conversations.append_messages(
            conversation.id, [message("hello"), message("hi!", "assistant")], user_id=user.id
        )
    return user.id


async def schema_tables(conn: psycopg.AsyncConnection[Any], schema: str) -> list[str]:
    """Every base table of the library's schema, from information_schema (a table added by a
    future migration is included without changing this test)."""
    cur = await conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
        (schema,),
    )
    return [str(row[0]) for row in await cur.fetchall()]


async def rows_mentioning(db: Database, needles: set[str]) -> dict[str, int]:
    """Per table of the schema, the rows whose JSON form contains any of `needles` (the user's
    id, email and every id of their rows)."""
    found: dict[str, int] = {}
    async with db.connection() as conn:
        tables = await schema_tables(conn, db.schema)
        assert {
            "users",
            "job_info",
            "questions",
            "interviews",
            "documents",
            "conversations",
        } <= set(tables)
        for table in tables:
            cur = await conn.execute(
                f'SELECT to_jsonb(t)::text FROM "{db.schema}"."{table}" t'.encode()
            )
            rows = [str(r[0]) for r in await cur.fetchall()]
            found[table] = sum(1 for row in rows if any(n in row for n in needles))
    return found


async def checksums(db: Database, needles: set[str] | None = None) -> dict[str, str]:
    """Per table of the schema, the md5 of its rows (only those mentioning one of `needles`,
    when given) in a stable order; "" for none."""
    sums: dict[str, str] = {}
    async with db.connection() as conn:
        for table in await schema_tables(conn, db.schema):
            cur = await conn.execute(
                f'SELECT to_jsonb(t)::text FROM "{db.schema}"."{table}" t'.encode()
            )
            rows = sorted(str(r[0]) for r in await cur.fetchall())
            if needles is not None:
                rows = [row for row in rows if any(n in row for n in needles)]
            sums[table] = hashlib.md5("|".join(rows).encode()).hexdigest() if rows else ""
    return sums


def identifiers(export: dict[str, Any]) -> set[str]:
    """The user's id and email and the id of every row of theirs, from an export."""
    ids = {export["user"]["id"], export["user"]["email"]}
    for job in export["job_infos"]:
        ids |= {job["id"], *(q["id"] for q in job["questions"])}
        ids |= {i["id"] for i in job["interviews"]}
    ids |= {d["id"] for d in export["documents"]}
    ids |= {c["id"] for c in export["conversations"]}
    return ids


# ------------------------------------------------------------------ export


async def test_export_holds_every_table_and_round_trips_through_json(darasa_db):
    user_id = await fill(darasa_db, "alice", 1)
    await fill(darasa_db, "bob", 50)

    export = await darasa_db.users.export(user_id)
    again = json.loads(json.dumps(export))

    assert again == export
    assert export["format_version"] == 1
    assert export["user"]["id"] == user_id
    assert export["user"]["email"] == "alice@example.com"
    assert "password_hash" not in export["user"]
    assert export["user"]["has_password"] is True
    assert len(export["job_infos"]) == 2
    assert sum(len(j["questions"]) for j in export["job_infos"]) == 3
    assert [len(j["interviews"]) for j in export["job_infos"]] == [1, 1]
    assert {i["feedback"] for j in export["job_infos"] for i in j["interviews"]} == {"alice: good"}
    assert all(j["experience_level"] == "senior" for j in export["job_infos"])
    assert len(export["documents"]) == 3
    assert len(export["conversations"]) == 2
    assert [len(c["messages"]) for c in export["conversations"]] == [2, 2]
    assert export["conversations"][0]["messages"][1] == {"role": "assistant", "content": "hi!"}
    assert all(
        isinstance(j["id"], str) and isinstance(j["created_at"], str) for j in again["job_infos"]
    )
    assert uuid.UUID(export["documents"][0]["id"])

    stored = {d.id: d for d in await darasa_db.documents.list_for_user(user_id)}
    embedded = [d for d in export["documents"] if d["embedding"] is not None]
    assert len(embedded) == 2
    for document in embedded:
        assert isinstance(document["embedding"], list)
        assert len(document["embedding"]) == 1536
        assert all(isinstance(x, float) for x in document["embedding"])
        assert tuple(document["embedding"]) == stored[uuid.UUID(document["id"])].embedding
    assert "search_vector" not in export["documents"][0]

    counts = await row_counts(darasa_db, user_id)
    assert counts == {
        "users": 1,
        "job_info": len(export["job_infos"]),
        "questions": 3,
        "interviews": 2,
        "documents": 3,
        "conversations": 2,
    }
    assert "bob" not in json.dumps(export)


async def test_export_of_a_missing_user_raises_not_found(darasa_db):
    with pytest.raises(NotFoundError):
        await darasa_db.users.export("user_nobody")
    with pytest.raises(NotFoundError):
        await darasa_db.users.export("x" * 300)


async def test_export_inside_a_transaction_sees_its_writes(darasa_db):
    user = await make_user(darasa_db, "alice")
    async with darasa_db.transaction() as tx:
        await tx.job_infos.create(user.id, job_info_input(name="uncommitted"))
        export = await tx.users.export(user.id)
    assert [j["name"] for j in export["job_infos"]] == ["uncommitted"]


async def test_export_reads_one_snapshot(darasa_db, monkeypatch):
    """A job info committed while an export runs is in all of its parts or in none."""
    user_id = await fill(darasa_db, "alice", 1)
    from darasa_db.repositories import users as users_module

    seen: dict[str, Any] = {}

    async def write_between() -> None:
        await darasa_db.job_infos.create(user_id, job_info_input(name="late"))

    fetch = users_module.SqlUserRepository._fetch

    async def slow_fetch(self, conn, build, params, factory):
        rows = await fetch(self, conn, build, params, factory)
        if build is users_module._get and "written" not in seen:
            seen["written"] = True
            await write_between()  # committed on another connection, mid-export
        return rows

    monkeypatch.setattr(users_module.SqlUserRepository, "_fetch", slow_fetch)
    export = await darasa_db.users.export(user_id)
    assert seen["written"]
    assert [j["name"] for j in export["job_infos"]] == ["alice job 0", "alice job 1"]
    assert len((await darasa_db.users.export(user_id))["job_infos"]) == 3


# ------------------------------------------------------------------ erase


async def test_erase_deletes_everything_of_the_user_and_nothing_else(darasa_db):
    alice = await fill(darasa_db, "alice", 1)
    bob = await fill(darasa_db, "bob", 50)
    bob_before = await darasa_db.users.export(bob)
    before = await row_counts(darasa_db, alice)
    export = await darasa_db.users.export(alice)
    needles = identifiers(export)
    assert sum((await rows_mentioning(darasa_db, needles)).values()) == sum(before.values())
    bob_rows = await rows_mentioning(darasa_db, identifiers(bob_before))

    bob_sums = await checksums(darasa_db, identifiers(bob_before))
    assert all(bob_sums[t] for t in ("users", "job_info", "questions", "interviews"))

    report = await darasa_db.users.erase(alice)

    assert isinstance(report, ErasureReport)
    assert report.user_id == alice
    assert report.counts == before
    assert report.total == 13
    left = await rows_mentioning(darasa_db, needles)
    assert left
    assert all(count == 0 for count in left.values()), left
    assert await row_counts(darasa_db, alice) == dict.fromkeys(before, 0)
    assert await darasa_db.users.get(alice) is None

    # Bob's rows are byte for byte what they were, in every table of the schema
    assert await rows_mentioning(darasa_db, identifiers(bob_before)) == bob_rows
    assert await checksums(darasa_db, identifiers(bob_before)) == bob_sums
    bob_after = await darasa_db.users.export(bob)
    bob_before.pop("exported_at"), bob_after.pop("exported_at")
    assert bob_after == bob_before


async def test_erase_of_a_missing_user_raises_and_changes_nothing(darasa_db):
    await fill(darasa_db, "bob", 50)
    sums = await checksums(darasa_db)
    with pytest.raises(NotFoundError):
        await darasa_db.users.erase("user_nobody")
    with pytest.raises(NotFoundError):
        await darasa_db.users.erase("bad\x00id")
    assert await checksums(darasa_db) == sums


async def test_erase_in_a_transaction_rolls_back_with_it(darasa_db):
    alice = await fill(darasa_db, "alice", 1)
    sums = await checksums(darasa_db)
    reports = []

    async def erase_then_fail() -> None:
        async with darasa_db.transaction() as tx:
            reports.append(await tx.users.erase(alice))
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError):
        await erase_then_fail()
    assert reports[0].counts["documents"] == 3
    assert await checksums(darasa_db) == sums


async def test_erase_purges_the_users_cache_entries_in_another_process(darasa_database_url):
    here = await open_database(darasa_database_url, RecordingCache(), application_name="here")
    there = await open_database(darasa_database_url, RecordingCache(), application_name="there")
    try:
        alice = await fill(here, "alice", 1)
        bob = await fill(here, "bob", 50)
        jobs = await there.job_infos.list_for_user(alice)
        job = await there.job_infos.get(jobs[0].id, user_id=alice)
        docs = await there.documents.list_for_user(alice)
        chats = await there.conversations.list_for_user(alice)
        questions = await there.questions.list_for_job_info(jobs[0].id, user_id=alice)
        user = await there.users.get(alice)
        by_email = await there.users.get_by_email("alice@example.com")
        bobs_jobs = await there.job_infos.list_for_user(bob)
        assert jobs
        assert job
        assert docs
        assert chats
        assert questions
        assert user
        assert by_email
        assert await there.job_infos.list_for_user(alice) == jobs  # served by the cache now

        await here.users.erase(alice)

        wanted = {user_tag(entity, alice) for entity in ENTITIES} | {"users"}
        cache = there.cache
        assert isinstance(cache, RecordingCache)
        await eventually(lambda: wanted <= cache.all_invalidated(), what="the erase's notice")
        assert await there.job_infos.list_for_user(alice) == []
        assert await there.job_infos.get(jobs[0].id, user_id=alice) is None
        assert await there.documents.list_for_user(alice) == []
        assert await there.conversations.list_for_user(alice) == []
        assert await there.questions.list_for_job_info(jobs[0].id, user_id=alice) == []
        assert await there.users.get(alice) is None
        assert await there.users.get_by_email("alice@example.com") is None
        assert await there.job_infos.list_for_user(bob) == bobs_jobs
        assert await here.users.get(alice) is None
    finally:
        await asyncio.gather(here.close(), there.close())
