"""Questions and interviews carry their job info's `user_id`: set on create, never another
user's, and the SQL ownership checks read it with no join to `job_info` (the fakes agree)."""

from __future__ import annotations

import re

import pytest

from darasa_db import NotFoundError
from darasa_db.repositories.interviews import SqlInterviewRepository
from darasa_db.repositories.questions import SqlQuestionRepository
from darasa_db.schemas import InterviewCreate, InterviewUpdate, QuestionCreate, UserUpsert
from integration.helpers import job_info_input


@pytest.fixture(params=["darasa_memory_db", "darasa_db"])
def repos(request):
    """The in-memory fakes, or the SQL repositories on a fresh migrated database."""
    return request.getfixturevalue(request.param)


async def two_users(repos):
    """Alice and Bob, each with a job info."""
    jobs = []
    for name in ("alice", "bob"):
        user = await repos.users.upsert(UserUpsert(id=name, email=f"{name}@b.co", name=name))
        jobs.append(await repos.job_infos.create(user.id, job_info_input()))
    return jobs


async def test_children_carry_their_job_infos_owner(repos):
    alice_job, _ = await two_users(repos)
    question = await repos.questions.create(
        alice_job.id, QuestionCreate(text="Why?", difficulty="easy"), user_id="alice"
    )
    interview = await repos.interviews.create(
        alice_job.id, InterviewCreate(duration="15 minutes"), user_id="alice"
    )
    updated = await repos.interviews.update(
        interview.id, InterviewUpdate(feedback="good"), user_id="alice"
    )

    assert (question.user_id, interview.user_id, updated.user_id) == ("alice",) * 3
    assert await repos.questions.get(question.id, user_id="alice") == question
    assert await repos.questions.list_for_job_info(alice_job.id, user_id="alice") == [question]
    assert await repos.interviews.list_for_job_info(alice_job.id, user_id="alice") == [updated]
    export = await repos.users.export("alice")
    (job,) = export["job_infos"]
    assert [q["user_id"] for q in job["questions"]] == ["alice"]
    assert [i["user_id"] for i in job["interviews"]] == ["alice"]


async def test_a_child_under_another_users_job_info_is_refused_and_the_transaction_goes_on(
    repos,
):
    alice_job, bob_job = await two_users(repos)
    async with repos.transaction() as tx:
        with pytest.raises(NotFoundError):
            await tx.questions.create(
                alice_job.id, QuestionCreate(text="mine now", difficulty="easy"), user_id="bob"
            )
        with pytest.raises(NotFoundError):
            await tx.interviews.create(
                alice_job.id, InterviewCreate(duration="5 minutes"), user_id="bob"
            )
        # a refused child is not a failed statement: the transaction's other writes commit
        kept = await tx.questions.create(
            bob_job.id, QuestionCreate(text="Why?", difficulty="easy"), user_id="bob"
        )

    assert await repos.questions.list_for_job_info(alice_job.id, user_id="alice") == []
    assert await repos.interviews.list_for_job_info(alice_job.id, user_id="alice") == []
    assert await repos.questions.list_for_job_info(alice_job.id, user_id="bob") == []
    assert await repos.questions.list_for_job_info(bob_job.id, user_id="bob") == [kept]
    assert await repos.questions.get(kept.id, user_id="alice") is None
    assert await repos.questions.delete(kept.id, user_id="alice") is False
    assert await repos.questions.get(kept.id, user_id="bob") == kept


JOB_INFO_TABLE = re.compile(r"\bdarasa\.job_info\b")


@pytest.mark.parametrize("repository", [SqlQuestionRepository, SqlInterviewRepository])
def test_ownership_checks_read_the_rows_own_user_id_without_job_info(repository):
    owned = repository._owned
    statements = {
        "get": owned.select_owned(),
        "delete": owned.delete_owned(),
        "update": owned.update_owned(frozenset({"updated_at"}))(),
        "list_for_job_info": owned.children(),
    }
    for name, statement in statements.items():
        sql = str(statement)
        assert "user_id = :user_id" in sql, name
        assert not JOB_INFO_TABLE.search(sql), (name, sql)
    # create alone reads the job info: the row takes its id and owner from it
    assert str(owned.insert()).count("FROM darasa.job_info") == 1
