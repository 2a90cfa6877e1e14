"""InterviewRepository against the real server: create, get, list_for_job_info, update."""

from __future__ import annotations

import uuid

import pytest

from darasa_db import Database, NotFoundError
from darasa_db.schemas import InterviewCreate, InterviewUpdate, JobInfo, User
from integration.helpers import job_info_input, row_counts, table_rows

MALFORMED_IDS = ["not-a-uuid", ""]


async def test_create_interview_stores_every_field(
    darasa_db: Database, user: User, job_info: JobInfo
):
    created = await darasa_db.interviews.create(
        job_info.id,
        InterviewCreate(duration="15 minutes", hume_chat_id="chat_1", feedback="Good."),
        user_id=user.id,
    )

    assert (created.job_info_id, created.duration) == (job_info.id, "15 minutes")
    assert (created.hume_chat_id, created.feedback) == ("chat_1", "Good.")
    assert await darasa_db.interviews.get(created.id, user_id=user.id) == created


async def test_create_interview_leaves_optional_fields_null(
    darasa_db: Database, user: User, job_info: JobInfo
):
    created = await darasa_db.interviews.create(
        job_info.id, InterviewCreate(duration="30 minutes"), user_id=user.id
    )

    assert (created.hume_chat_id, created.feedback) == (None, None)


async def test_create_interview_under_a_missing_job_info_raises_not_found(
    darasa_db: Database, user: User, job_info: JobInfo
):
    with pytest.raises(NotFoundError) as caught:
        await darasa_db.interviews.create(
            uuid.uuid4(), InterviewCreate(duration="15 minutes"), user_id=user.id
        )

    assert caught.value.entity == "job_info"
    assert (await row_counts(darasa_db))["interviews"] == 0


async def test_get_returns_none_for_a_missing_interview(
    darasa_db: Database, user: User, job_info: JobInfo
):
    assert await darasa_db.interviews.get(uuid.uuid4(), user_id=user.id) is None


async def test_list_for_job_info_returns_only_that_job_infos_interviews_newest_first(
    darasa_db: Database, user: User, job_info: JobInfo
):
    other_job = await darasa_db.job_infos.create(user.id, job_info_input(name="Other"))
    made = [
        await darasa_db.interviews.create(
            job_info.id, InterviewCreate(duration=f"{i} minutes"), user_id=user.id
        )
        for i in range(3)
    ]
    await darasa_db.interviews.create(
        other_job.id, InterviewCreate(duration="1 hour"), user_id=user.id
    )

    listed = await darasa_db.interviews.list_for_job_info(job_info.id, user_id=user.id)

    assert [i.id for i in listed] == [i.id for i in reversed(made)]


async def test_list_for_a_missing_or_malformed_job_info_is_empty(darasa_db: Database, user: User):
    assert await darasa_db.interviews.list_for_job_info(uuid.uuid4(), user_id=user.id) == []
    assert await darasa_db.interviews.list_for_job_info("nope", user_id=user.id) == []


async def test_update_records_feedback_and_moves_updated_at(
    darasa_db: Database, user: User, job_info: JobInfo
):
    interview = await darasa_db.interviews.create(
        job_info.id, InterviewCreate(duration="15 minutes", hume_chat_id="c1"), user_id=user.id
    )

    updated = await darasa_db.interviews.update(
        interview.id,
        InterviewUpdate(feedback="Strong answers.", hume_chat_id=None),
        user_id=user.id,
    )

    assert (updated.feedback, updated.hume_chat_id) == ("Strong answers.", None)
    assert updated.duration == "15 minutes"
    assert updated.updated_at > interview.updated_at
    assert await darasa_db.interviews.get(interview.id, user_id=user.id) == updated


async def test_update_of_a_missing_interview_raises_not_found(
    darasa_db: Database, user: User, job_info: JobInfo
):
    with pytest.raises(NotFoundError):
        await darasa_db.interviews.update(
            uuid.uuid4(), InterviewUpdate(feedback="x"), user_id=user.id
        )


async def test_malformed_ids_behave_as_missing(darasa_db: Database, user: User, job_info: JobInfo):
    before = await table_rows(darasa_db)

    for bad_id in MALFORMED_IDS:
        with pytest.raises(NotFoundError):
            await darasa_db.interviews.create(
                bad_id, InterviewCreate(duration="15 minutes"), user_id=user.id
            )
        assert await darasa_db.interviews.get(bad_id, user_id=user.id) is None
        assert await darasa_db.interviews.list_for_job_info(bad_id, user_id=user.id) == []
        with pytest.raises(NotFoundError):
            await darasa_db.interviews.update(
                bad_id, InterviewUpdate(feedback="x"), user_id=user.id
            )

    assert await table_rows(darasa_db) == before
