"""A `Database` without a cache builds no cache keys or tags for its reads: each read goes to
the server and sees every write at once, its own and another Database's."""

from __future__ import annotations

from darasa_db import Database, DatabaseSettings
from darasa_db.schemas import JobInfoUpdate, QuestionCreate
from integration.helpers import job_info_input, make_user


async def test_reads_without_a_cache_see_every_write_at_once(darasa_database_url: str) -> None:
    settings = DatabaseSettings(url=darasa_database_url, test_mode=True)
    async with Database(settings, cache=None) as db, Database(settings, cache=None) as other:
        user = await make_user(db, "uncached")
        job = await db.job_infos.create(user.id, job_info_input(name="first"))
        assert await db.job_infos.get(job.id, user_id=user.id) == job
        assert await db.job_infos.list_for_user(user.id) == [job]
        assert await db.questions.list_for_job_info(job.id, user_id=user.id) == []

        renamed = await other.job_infos.update(
            job.id, JobInfoUpdate(name="second"), user_id=user.id
        )
        question = await other.questions.create(
            job.id, QuestionCreate(text="Why?", difficulty="easy"), user_id=user.id
        )
        assert await db.job_infos.get(job.id, user_id=user.id) == renamed
        assert await db.job_infos.list_for_user(user.id) == [renamed]
        assert await db.questions.list_for_job_info(job.id, user_id=user.id) == [question]

        assert await other.job_infos.delete(job.id, user_id=user.id)
        assert await db.job_infos.get(job.id, user_id=user.id) is None
        assert await db.job_infos.list_for_user(user.id) == []
        assert await db.questions.list_for_job_info(job.id, user_id=user.id) == []
