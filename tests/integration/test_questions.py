"""QuestionRepository against the real server: create, get, list_for_job_info, delete."""

from __future__ import annotations

import uuid

import pytest

from darasa_db import Database, NotFoundError
from darasa_db.schemas import JobInfo, QuestionCreate, User
from integration.helpers import job_info_input, row_counts, table_rows

MALFORMED_IDS = ["not-a-uuid", ""]


async def test_create_question_of_each_difficulty_under_an_owned_job_info(
    darasa_db: Database, user: User, job_info: JobInfo
):
    for difficulty in ("easy", "medium", "hard"):
        created = await darasa_db.questions.create(
            job_info.id, QuestionCreate(text="Why?", difficulty=difficulty), user_id=user.id
        )

        assert (created.job_info_id, created.text, created.difficulty) == (
            job_info.id,
            "Why?",
            difficulty,
        )
        assert await darasa_db.questions.get(created.id, user_id=user.id) == created


async def test_create_question_under_a_missing_job_info_raises_not_found(
    darasa_db: Database, user: User, job_info: JobInfo
):
    with pytest.raises(NotFoundError) as caught:
        await darasa_db.questions.create(
            uuid.uuid4(), QuestionCreate(text="Why?", difficulty="easy"), user_id=user.id
        )

    assert caught.value.entity == "job_info"
    assert (await row_counts(darasa_db))["questions"] == 0


async def test_get_returns_none_for_a_missing_question(
    darasa_db: Database, user: User, job_info: JobInfo
):
    assert await darasa_db.questions.get(uuid.uuid4(), user_id=user.id) is None
    assert await darasa_db.questions.get(job_info.id, user_id=user.id) is None  # not a question


async def test_list_for_job_info_returns_only_that_job_infos_questions_newest_first(
    darasa_db: Database, user: User, job_info: JobInfo
):
    other_job = await darasa_db.job_infos.create(user.id, job_info_input(name="Other"))
    made = [
        await darasa_db.questions.create(
            job_info.id, QuestionCreate(text=f"q{i}", difficulty="medium"), user_id=user.id
        )
        for i in range(3)
    ]
    await darasa_db.questions.create(
        other_job.id, QuestionCreate(text="elsewhere", difficulty="hard"), user_id=user.id
    )

    listed = await darasa_db.questions.list_for_job_info(job_info.id, user_id=user.id)

    assert [q.id for q in listed] == [q.id for q in reversed(made)]


async def test_list_for_a_missing_or_malformed_job_info_is_empty(darasa_db: Database, user: User):
    assert await darasa_db.questions.list_for_job_info(uuid.uuid4(), user_id=user.id) == []
    assert await darasa_db.questions.list_for_job_info("nope", user_id=user.id) == []


async def test_delete_removes_the_question_then_reports_false(
    darasa_db: Database, user: User, job_info: JobInfo
):
    question = await darasa_db.questions.create(
        job_info.id, QuestionCreate(text="Why?", difficulty="easy"), user_id=user.id
    )

    assert await darasa_db.questions.delete(question.id, user_id=user.id) is True
    assert await darasa_db.questions.get(question.id, user_id=user.id) is None
    assert await darasa_db.questions.delete(question.id, user_id=user.id) is False
    assert await darasa_db.job_infos.get(job_info.id, user_id=user.id) == job_info


async def test_malformed_ids_behave_as_missing(darasa_db: Database, user: User, job_info: JobInfo):
    before = await table_rows(darasa_db)

    for bad_id in MALFORMED_IDS:
        with pytest.raises(NotFoundError):
            await darasa_db.questions.create(
                bad_id, QuestionCreate(text="Why?", difficulty="easy"), user_id=user.id
            )
        assert await darasa_db.questions.get(bad_id, user_id=user.id) is None
        assert await darasa_db.questions.list_for_job_info(bad_id, user_id=user.id) == []
        assert await darasa_db.questions.delete(bad_id, user_id=user.id) is False

    assert await table_rows(darasa_db) == before
