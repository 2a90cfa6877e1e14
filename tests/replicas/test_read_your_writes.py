"""Read-your-writes whatever the lag: once a Database has acknowledged a write (a pool write or
a committed transaction), its later reads reflect it, even with the replica's replay paused.
"""

from __future__ import annotations

import asyncio

import pytest

from cache.helpers import job_info_input, make_user
from darasa_db import Database, TagCache
from darasa_db.schemas import (
    ConversationCreate,
    InterviewCreate,
    InterviewUpdate,
    JobInfoUpdate,
    Message,
    QuestionCreate,
    UserUpdate,
)
from replica_fixtures import OpenDatabase, Replicated
from replicas.helpers import EMBEDDING, document_input, name_of, read_then_paused


@pytest.fixture(params=["cached", "uncached"])
def db(request: pytest.FixtureRequest, open_db: OpenDatabase) -> Database:
    """A Database routed over the pair, with the default cache or none."""
    return open_db(cache=TagCache() if request.param == "cached" else None)


async def test_a_pool_write_is_read_back_while_the_replica_is_paused(
    replicated: Replicated, db: Database
):
    ada = await read_then_paused(replicated, db, db)

    await db.users.update(ada.id, UserUpdate(name="Grace"))
    assert await name_of(db, ada.id) == "Grace"
    by_email = await db.users.get_by_email("ada@example.com")
    assert by_email is not None
    assert by_email.name == "Grace"

    await replicated.resume_replay()
    await replicated.wait_caught_up()
    assert await name_of(db, ada.id) == "Grace"


async def test_rows_created_while_the_replica_is_paused_are_found(
    replicated: Replicated, db: Database
):
    await replicated.pause_replay()
    ada = await make_user(db, "ada")  # the replica has never seen Ada
    assert await name_of(db, ada.id) == "Ada"
    job = await db.job_infos.create(ada.id, job_info_input("Acme"))
    assert await db.job_infos.get(job.id, user_id=ada.id) == job
    assert [j.id for j in await db.job_infos.list_for_user(ada.id)] == [job.id]


async def test_a_committed_transaction_is_read_back_while_the_replica_is_paused(
    replicated: Replicated, db: Database
):
    ada = await make_user(db, "ada")
    await replicated.wait_caught_up()
    assert await db.job_infos.list_for_user(ada.id) == []  # cached empty, where cached
    assert await db.documents.similarity_search(EMBEDDING, user_id=ada.id) == []
    await replicated.pause_replay()

    async with db.transaction() as tx:
        job = await tx.job_infos.create(ada.id, job_info_input("Acme"))
        document = await tx.documents.create(ada.id, document_input("Notes"))

    assert [j.id for j in await db.job_infos.list_for_user(ada.id)] == [job.id]
    assert await db.job_infos.get(job.id, user_id=ada.id) == job
    assert [d.id for d in await db.documents.list_for_user(ada.id)] == [document.id]
    matches = await db.documents.similarity_search(EMBEDDING, user_id=ada.id)
    assert [m.document.id for m in matches] == [document.id]
    hybrid = await db.documents.hybrid_search("replicas", EMBEDDING, user_id=ada.id)
    assert [m.document.id for m in hybrid] == [document.id]


async def test_appended_messages_and_renames_are_read_back_while_the_replica_is_paused(
    replicated: Replicated, db: Database
):
    ada = await make_user(db, "ada")
    chat = await db.conversations.create(ada.id, ConversationCreate(title="Chat"))
    await replicated.wait_caught_up()
    assert await db.conversations.get(chat.id, user_id=ada.id) == chat
    await replicated.pause_replay()

    await db.conversations.append_messages(
        chat.id, [Message(role="user", content="hello")], user_id=ada.id
    )
    await db.conversations.rename(chat.id, "Renamed", user_id=ada.id)
    seen = await db.conversations.get(chat.id, user_id=ada.id)
    assert seen is not None
    assert (seen.title, [m.content for m in seen.messages]) == ("Renamed", ["hello"])
    assert [c.title for c in await db.conversations.list_for_user(ada.id)] == ["Renamed"]


async def test_a_delete_is_read_back_while_the_replica_is_paused(
    replicated: Replicated, db: Database
):
    ada = await read_then_paused(replicated, db, db)

    assert await db.users.delete(ada.id) is True
    assert await db.users.get(ada.id) is None
    assert await db.users.get_by_email("ada@example.com") is None


async def test_a_write_is_read_back_at_once_however_far_the_replica_lags(
    replicated: Replicated, db: Database
):
    """No pause at all: the read right after the write races the replica's replay."""
    ada = await make_user(db, "ada")
    for n in range(20):
        await db.users.update(ada.id, UserUpdate(name=f"Ada {n}"))
        assert await name_of(db, ada.id) == f"Ada {n}"


async def test_every_kind_of_write_is_read_back_while_the_replica_is_paused(
    replicated: Replicated, db: Database
):
    ada = await read_then_paused(replicated, db, db)
    job = await db.job_infos.create(ada.id, job_info_input("Acme"))
    await db.job_infos.update(job.id, JobInfoUpdate(name="Globex"), user_id=ada.id)
    seen_job = await db.job_infos.get(job.id, user_id=ada.id)
    assert seen_job is not None
    assert seen_job.name == "Globex"

    question = await db.questions.create(
        job.id, QuestionCreate(text="Why?", difficulty="easy"), user_id=ada.id
    )
    assert [q.id for q in await db.questions.list_for_job_info(job.id, user_id=ada.id)] == [
        question.id
    ]
    assert await db.questions.delete(question.id, user_id=ada.id) is True
    assert await db.questions.get(question.id, user_id=ada.id) is None

    interview = await db.interviews.create(
        job.id, InterviewCreate(duration="15 minutes"), user_id=ada.id
    )
    await db.interviews.update(interview.id, InterviewUpdate(feedback="Good"), user_id=ada.id)
    seen_interview = await db.interviews.get(interview.id, user_id=ada.id)
    assert seen_interview is not None
    assert seen_interview.feedback == "Good"

    created = await db.documents.create_many(ada.id, [document_input("A"), document_input("B")])
    assert created == 2
    assert len(await db.documents.list_for_user(ada.id)) == 2
    assert len(await db.documents.similarity_search(EMBEDDING, user_id=ada.id)) == 2

    export = await db.users.export(ada.id)
    assert [j["name"] for j in export["job_infos"]] == ["Globex"]
    assert len(export["documents"]) == 2

    await db.users.erase(ada.id)
    assert await db.users.get(ada.id) is None
    assert await db.job_infos.list_for_user(ada.id) == []


async def test_concurrent_writes_are_all_read_back_while_the_replica_is_paused(
    replicated: Replicated, db: Database
):
    users = [await make_user(db, f"user{n}") for n in range(8)]
    await replicated.wait_caught_up()
    await replicated.pause_replay()

    await asyncio.gather(
        *(db.users.update(u.id, UserUpdate(name=f"Renamed {n}")) for n, u in enumerate(users))
    )
    names = await asyncio.gather(*(name_of(db, u.id) for u in users))
    assert names == [f"Renamed {n}" for n in range(len(users))]
