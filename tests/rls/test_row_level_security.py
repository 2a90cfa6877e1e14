"""Opt-in row-level security: policies keyed on darasa.user_id, seen by a non-superuser role."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import numpy as np
import psycopg
import pytest
from psycopg import sql

from darasa_db import Database, DatabaseSettings, rls
from darasa_db.schemas import (
    ConversationCreate,
    DocumentCreate,
    JobInfoCreate,
    Message,
    QuestionCreate,
    UserUpsert,
)

PASSWORD = "app-secret"
_roles = itertools.count()


def _as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}:{quote(PASSWORD)}@{host}"))


@pytest.fixture
def app_url(darasa_database_url: str) -> Iterator[str]:
    """A LOGIN role that is neither superuser nor owner, with DML rights on our schema."""
    role = f"darasa_app_{os.getpid()}_{next(_roles)}"
    dbname = urlsplit(darasa_database_url).path.lstrip("/")
    ident = sql.Identifier(role)
    with psycopg.connect(darasa_database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(PASSWORD))
        )
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMP ON DATABASE {} TO {}").format(
                sql.Identifier(dbname), ident
            )
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA darasa TO {}").format(ident))
        conn.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA darasa TO {}"
            ).format(ident)
        )
    yield _as_role(darasa_database_url, role)
    with psycopg.connect(darasa_database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
        conn.execute(sql.SQL("DROP ROLE {}").format(ident))


async def _seed(db: Database, user_id: str) -> None:
    await db.users.upsert(UserUpsert(id=user_id, email=f"{user_id}@example.com", name=user_id))
    job = await db.job_infos.create(
        user_id, JobInfoCreate(name="job", experience_level="senior", description="d")
    )
    await db.questions.create(job.id, QuestionCreate(text="q", difficulty="easy"), user_id=user_id)
    await db.conversations.create(
        user_id, ConversationCreate(title="c", messages=[Message(role="user", content="hi")])
    )


def _count(url: str, table: str, user_id: str | None) -> int:
    with psycopg.connect(url) as conn:
        if user_id is not None:
            conn.execute("SELECT set_config('darasa.user_id', %s, true)", (user_id,))
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM darasa.{}").format(sql.Identifier(table))
        ).fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.embedded_smoke
async def test_raw_sql_sees_only_the_rows_of_the_user_in_the_setting(
    darasa_db, darasa_database_url, app_url
):
    await _seed(darasa_db, "alice")
    await _seed(darasa_db, "bob")
    rls.enable(darasa_database_url)

    for table in ("users", "job_info", "questions", "conversations"):
        assert _count(app_url, table, None) == 0, table
        assert _count(app_url, table, "alice") == 1, table
    assert _count(darasa_database_url, "job_info", None) == 2  # the superuser bypasses policies


async def test_repositories_work_under_row_level_security(darasa_db, darasa_database_url, app_url):
    await _seed(darasa_db, "bob")
    rls.enable(darasa_database_url)
    settings = DatabaseSettings(url=app_url, row_level_security=True, test_mode=True)
    async with Database(settings) as db:
        user = await db.users.upsert(UserUpsert(id="alice", email="alice@example.com", name="A"))
        assert (await db.users.get_by_email("ALICE@example.com")) == user
        job = await db.job_infos.create(
            "alice", JobInfoCreate(name="j", experience_level="junior", description="d")
        )
        async with db.transaction() as tx:
            await tx.questions.create(
                job.id, QuestionCreate(text="q", difficulty="hard"), user_id="alice"
            )
            assert len(await tx.questions.list_for_job_info(job.id, user_id="alice")) == 1
        rng = np.random.default_rng(7)
        docs = [
            DocumentCreate(title=f"d{i}", content="c", embedding=rng.normal(size=1536))
            for i in range(5)
        ]
        assert await db.documents.create_many("alice", docs) == 5
        matches = await db.documents.similarity_search(docs[0].embedding, user_id="alice", limit=3)
        assert next(m.document.title for m in matches) == "d0"
        assert len(await db.job_infos.list_for_user("alice")) == 1
        assert await db.users.delete("alice")
    assert _count(darasa_database_url, "users", None) == 1  # bob is untouched


async def test_without_the_setting_the_application_role_sees_nothing(
    darasa_db, darasa_database_url, app_url
):
    await _seed(darasa_db, "alice")
    rls.enable(darasa_database_url)
    settings = DatabaseSettings(url=app_url, row_level_security=False, test_mode=True)
    async with Database(settings, cache=None) as db:
        assert await db.job_infos.list_for_user("alice") == []
        assert await db.users.get("alice") is None
    assert rls.status(darasa_database_url) == dict.fromkeys(rls.OWNED_TABLES, True)
    rls.disable(darasa_database_url)
    assert not any(rls.status(darasa_database_url).values())
