"""Reads run the statement again on the same connection when its prepared plan went stale (a
column's type changed under a running `Database`): `get` and `list_for_user`, and an `export`
(its reads share one snapshot) still answers."""

from __future__ import annotations

import psycopg

from darasa_db import Database, DatabaseSettings
from integration.helpers import job_info_input, make_user


async def test_reads_survive_a_column_type_change_under_prepared_plans(
    darasa_database_url: str,
) -> None:
    settings = DatabaseSettings(
        url=darasa_database_url, test_mode=False, pool_size=1, max_overflow=0
    )  # one connection: the one whose prepared plans go stale
    async with Database(settings, cache=None) as db:
        user = await make_user(db, "stale")
        job = await db.job_infos.create(user.id, job_info_input())
        for _ in range(2):  # prepared and used
            assert await db.job_infos.get(job.id, user_id=user.id) == job
            assert await db.job_infos.list_for_user(user.id) == [job]
            assert (await db.users.export(user.id))["job_infos"][0]["name"] == job.name
        async with await psycopg.AsyncConnection.connect(
            darasa_database_url, autocommit=True
        ) as conn:  # the result's type changes: "cached plan must not change result type"
            await conn.execute("ALTER TABLE darasa.job_info ALTER COLUMN name TYPE varchar(300)")

        assert await db.job_infos.get(job.id, user_id=user.id) == job
        assert await db.job_infos.list_for_user(user.id) == [job]
        assert (await db.users.export(user.id))["job_infos"][0]["name"] == job.name
