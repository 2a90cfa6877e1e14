"""The ownership matrix: another user's row behaves exactly as a missing one, and stays untouched.

Every owned method is called with Bob's user id on Alice's rows. It must return None, [] or
False, or raise NotFoundError, and every row of every table must be the same afterwards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from darasa_db import Database, NotFoundError
from darasa_db.schemas import (
    InterviewCreate,
    InterviewUpdate,
    JobInfoUpdate,
    QuestionCreate,
)
from integration.helpers import Holdings, make_holdings, message, table_rows

Call = Callable[[Database, Holdings, str], Awaitable[Any]]
NOT_FOUND = NotFoundError

# (name, call on Alice's holdings with Bob's id, expected result or NotFoundError)
CASES: list[tuple[str, Call, Any]] = [
    ("job_infos.get", lambda db, a, bob: db.job_infos.get(a.job_info.id, user_id=bob), None),
    (
        "job_infos.list_for_user after",
        lambda db, a, bob: db.job_infos.list_for_user(bob, after=a.job_info.id),
        [],
    ),
    (
        "job_infos.update",
        lambda db, a, bob: db.job_infos.update(
            a.job_info.id, JobInfoUpdate(name="stolen"), user_id=bob
        ),
        NOT_FOUND,
    ),
    ("job_infos.delete", lambda db, a, bob: db.job_infos.delete(a.job_info.id, user_id=bob), False),
    (
        "questions.create",
        lambda db, a, bob: db.questions.create(
            a.job_info.id, QuestionCreate(text="planted", difficulty="easy"), user_id=bob
        ),
        NOT_FOUND,
    ),
    ("questions.get", lambda db, a, bob: db.questions.get(a.question.id, user_id=bob), None),
    (
        "questions.list_for_job_info",
        lambda db, a, bob: db.questions.list_for_job_info(a.job_info.id, user_id=bob),
        [],
    ),
    ("questions.delete", lambda db, a, bob: db.questions.delete(a.question.id, user_id=bob), False),
    (
        "interviews.create",
        lambda db, a, bob: db.interviews.create(
            a.job_info.id, InterviewCreate(duration="1 minute"), user_id=bob
        ),
        NOT_FOUND,
    ),
    ("interviews.get", lambda db, a, bob: db.interviews.get(a.interview.id, user_id=bob), None),
    (
        "interviews.list_for_job_info",
        lambda db, a, bob: db.interviews.list_for_job_info(a.job_info.id, user_id=bob),
        [],
    ),
    (
        "interviews.update",
        lambda db, a, bob: db.interviews.update(
            a.interview.id, InterviewUpdate(feedback="forged"), user_id=bob
        ),
        NOT_FOUND,
    ),
    ("documents.get", lambda db, a, bob: db.documents.get(a.document.id, user_id=bob), None),
    (
        "documents.list_for_user after",
        lambda db, a, bob: db.documents.list_for_user(bob, after=a.document.id),
        [],
    ),
    ("documents.delete", lambda db, a, bob: db.documents.delete(a.document.id, user_id=bob), False),
    (
        "conversations.get",
        lambda db, a, bob: db.conversations.get(a.conversation.id, user_id=bob),
        None,
    ),
    (
        "conversations.list_for_user after",
        lambda db, a, bob: db.conversations.list_for_user(bob, after=a.conversation.id),
        [],
    ),
    (
        "conversations.append_messages",
        lambda db, a, bob: db.conversations.append_messages(
            a.conversation.id, [message("injected")], user_id=bob
        ),
        NOT_FOUND,
    ),
    (
        "conversations.append_messages of none",
        lambda db, a, bob: db.conversations.append_messages(a.conversation.id, [], user_id=bob),
        NOT_FOUND,
    ),
    (
        "conversations.rename",
        lambda db, a, bob: db.conversations.rename(a.conversation.id, "stolen", user_id=bob),
        NOT_FOUND,
    ),
    (
        "conversations.delete",
        lambda db, a, bob: db.conversations.delete(a.conversation.id, user_id=bob),
        False,
    ),
]


@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_foreign_user_sees_nothing_and_changes_nothing(
    darasa_db: Database, call: Call, expected: Any
):
    alice = await make_holdings(darasa_db, "alice", seed=1)
    bob = await make_holdings(darasa_db, "bob", seed=2)  # Bob owns rows too: none may leak
    before = await table_rows(darasa_db)

    if expected is NOT_FOUND:
        with pytest.raises(NotFoundError):
            await call(darasa_db, alice, bob.user.id)
    else:
        assert await call(darasa_db, alice, bob.user.id) == expected

    assert await table_rows(darasa_db) == before


@pytest.mark.embedded_smoke
async def test_foreign_user_cannot_update_job_info(darasa_db: Database):
    alice = await make_holdings(darasa_db, "alice", seed=1)
    bob = await make_holdings(darasa_db, "bob", seed=2)
    before = await table_rows(darasa_db)

    with pytest.raises(NotFoundError):
        await darasa_db.job_infos.update(
            alice.job_info.id, JobInfoUpdate(name="stolen"), user_id=bob.user.id
        )

    assert await darasa_db.job_infos.get(alice.job_info.id, user_id=alice.user.id) == alice.job_info
    assert await table_rows(darasa_db) == before


async def test_similarity_search_never_returns_another_users_document(darasa_db: Database):
    alice = await make_holdings(darasa_db, "alice", seed=1)
    bob = await make_holdings(darasa_db, "bob", seed=2)
    before = await table_rows(darasa_db)
    assert alice.document.embedding is not None

    matches = await darasa_db.documents.similarity_search(
        alice.document.embedding, user_id=bob.user.id, limit=10
    )

    assert [m.document.id for m in matches] == [bob.document.id]
    assert await table_rows(darasa_db) == before


async def test_owners_list_for_user_excludes_other_users_rows(darasa_db: Database):
    await make_holdings(darasa_db, "alice", seed=1)
    bob = await make_holdings(darasa_db, "bob", seed=2)

    assert [j.id for j in await darasa_db.job_infos.list_for_user(bob.user.id)] == [bob.job_info.id]
    assert [d.id for d in await darasa_db.documents.list_for_user(bob.user.id)] == [bob.document.id]
    assert [c.id for c in await darasa_db.conversations.list_for_user(bob.user.id)] == [
        bob.conversation.id
    ]
