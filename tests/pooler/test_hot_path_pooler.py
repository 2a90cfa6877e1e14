"""Job infos, read in binary format, behind a transaction-mode PgBouncer: what the writes
returned, whichever server connection the pooler hands out."""

from __future__ import annotations

from darasa_db import Database, DatabaseSettings
from darasa_db.schemas import JobInfoCreate, UserUpsert


async def test_binary_reads_behind_a_transaction_mode_pooler(pooled_url: str) -> None:
    db = Database(DatabaseSettings(url=pooled_url, test_mode=False, pool_size=3), cache=None)
    try:
        user = await db.users.upsert(UserUpsert(id="p", email="p@example.com", name="P"))
        created = [
            await db.job_infos.create(
                user.id, JobInfoCreate(name=level, experience_level=level, description="d")
            )
            for level in ("junior", "mid-level", "senior")
        ]
        assert db.behind_pooler
        for _ in range(5):  # several rounds: the pooler hands out its server connections in turn
            for job in created:
                fetched = await db.job_infos.get(job.id, user_id=user.id)
                assert fetched == job
                assert fetched is not None
                assert type(fetched.experience_level) is str
            assert await db.job_infos.list_for_user(user.id) == created[::-1]
    finally:
        await db.close()
