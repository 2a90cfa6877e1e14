"""JobInfoRepository against the real server: create, get, list_for_user, update, delete."""

from __future__ import annotations

import uuid

import pytest

from darasa_db import Database, NotFoundError
from darasa_db.schemas import JobInfo, JobInfoUpdate, User
from integration.helpers import as_any, job_info_input, row_counts, table_rows

MALFORMED_IDS = ["not-a-uuid", "", "123"]


async def test_create_job_info_stores_every_field(darasa_db: Database, user: User):
    created = await darasa_db.job_infos.create(
        user.id,
        job_info_input(name="Acme", title=None, experience_level="mid-level", description="Go."),
    )

    assert isinstance(created.id, uuid.UUID)
    assert (created.user_id, created.name, created.title) == (user.id, "Acme", None)
    assert (created.experience_level, created.description) == ("mid-level", "Go.")
    assert created.created_at == created.updated_at
    assert await darasa_db.job_infos.get(created.id, user_id=user.id) == created


async def test_create_job_info_for_an_unknown_user_raises_not_found(darasa_db: Database):
    with pytest.raises(NotFoundError) as caught:
        await darasa_db.job_infos.create("user_nobody", job_info_input())

    assert caught.value.entity == "user"
    assert (await row_counts(darasa_db))["job_info"] == 0


async def test_get_accepts_the_id_as_a_string(darasa_db: Database, user: User, job_info: JobInfo):
    assert await darasa_db.job_infos.get(str(job_info.id), user_id=user.id) == job_info


async def test_get_returns_none_for_a_missing_job_info(
    darasa_db: Database, user: User, job_info: JobInfo
):
    assert await darasa_db.job_infos.get(uuid.uuid4(), user_id=user.id) is None


async def test_list_for_user_returns_own_job_infos_newest_first(
    darasa_db: Database, user: User, other_user: User
):
    made = [
        await darasa_db.job_infos.create(user.id, job_info_input(name=f"j{i}")) for i in range(3)
    ]
    await darasa_db.job_infos.create(other_user.id, job_info_input(name="bob's"))

    listed = await darasa_db.job_infos.list_for_user(user.id)

    assert [j.id for j in listed] == [j.id for j in reversed(made)]


async def test_list_for_user_is_empty_for_a_user_without_job_infos(darasa_db: Database, user: User):
    assert await darasa_db.job_infos.list_for_user(user.id) == []
    assert await darasa_db.job_infos.list_for_user("user_nobody") == []


async def test_list_for_user_after_an_unknown_id_is_empty(
    darasa_db: Database, user: User, job_info: JobInfo
):
    assert await darasa_db.job_infos.list_for_user(user.id, after=uuid.uuid4()) == []


async def test_update_writes_the_given_fields_and_moves_updated_at(
    darasa_db: Database, user: User, job_info: JobInfo
):
    updated = await darasa_db.job_infos.update(
        job_info.id, JobInfoUpdate(title=None, experience_level="junior"), user_id=user.id
    )

    assert (updated.title, updated.experience_level) == (None, "junior")
    assert (updated.name, updated.description) == (job_info.name, job_info.description)
    assert updated.created_at == job_info.created_at
    assert updated.updated_at > job_info.updated_at
    assert await darasa_db.job_infos.get(job_info.id, user_id=user.id) == updated


async def test_update_of_a_missing_job_info_raises_not_found(
    darasa_db: Database, user: User, job_info: JobInfo
):
    with pytest.raises(NotFoundError):
        await darasa_db.job_infos.update(uuid.uuid4(), JobInfoUpdate(name="x"), user_id=user.id)


async def test_delete_removes_the_job_info_then_reports_false(
    darasa_db: Database, user: User, job_info: JobInfo
):
    assert await darasa_db.job_infos.delete(job_info.id, user_id=user.id) is True
    assert await darasa_db.job_infos.get(job_info.id, user_id=user.id) is None
    assert await darasa_db.job_infos.delete(job_info.id, user_id=user.id) is False


async def test_list_for_user_refuses_a_bad_limit(
    darasa_db: Database, user: User, job_info: JobInfo
):
    for limit in (0, -1, 1001, 2.5, True):
        with pytest.raises(ValueError, match="limit"):
            await darasa_db.job_infos.list_for_user(user.id, limit=as_any(limit))


async def test_malformed_ids_behave_as_missing(darasa_db: Database, user: User, job_info: JobInfo):
    before = await table_rows(darasa_db)

    for bad_id in MALFORMED_IDS:
        assert await darasa_db.job_infos.get(bad_id, user_id=user.id) is None
        assert await darasa_db.job_infos.list_for_user(user.id, after=bad_id) == []
        with pytest.raises(NotFoundError):
            await darasa_db.job_infos.update(bad_id, JobInfoUpdate(name="x"), user_id=user.id)
        assert await darasa_db.job_infos.delete(bad_id, user_id=user.id) is False

    assert await table_rows(darasa_db) == before
