"""The schema changes under a running `Database` with prepared statements: its own migrations
down and up again, a host adding an enum value and a column while calls run. No error storm,
no restart: a statement refused by a stale plan is run again on the same connection."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from darasa_db import Database, DatabaseSettings, TransactionConflictError, migrate
from darasa_db.schemas import JobInfoCreate, QuestionCreate, UserUpsert


def _job(n: int) -> JobInfoCreate:
    return JobInfoCreate(name=f"job {n}", experience_level="senior", description="d")


async def _calls(db: Database, rounds: int) -> int:
    """Creates of job infos and questions; returns how many failed."""
    failed = 0
    user = await db.users.upsert(UserUpsert(id="live", email="live@example.com", name="L"))
    for n in range(rounds):
        try:
            job = await db.job_infos.create(user.id, _job(n))
            await db.questions.create(
                job.id, QuestionCreate(text="why?", difficulty="hard"), user_id=user.id
            )
            await db.job_infos.list_for_user(user.id, limit=5)
        except Exception:
            failed += 1
    return failed


async def test_downgrade_and_upgrade_under_a_running_database(darasa_database_url: str):
    settings = DatabaseSettings(
        url=darasa_database_url, test_mode=False, pool_size=1, max_overflow=0
    )  # one connection: the one whose prepared plans go stale
    async with Database(settings, cache=None) as db:
        assert db.settings.prepared_statements is None
        assert await _calls(db, 10) == 0  # every statement is now prepared on the connections
        await asyncio.to_thread(migrate.downgrade, darasa_database_url, "base")
        await asyncio.to_thread(migrate.upgrade, darasa_database_url)
        assert await _calls(db, 20) == 0  # the enum types are new: plans recovered, no error


async def test_a_host_migration_adding_an_enum_value_and_a_column_while_calls_run(
    darasa_database_url: str,
):
    settings = DatabaseSettings(
        url=darasa_database_url, test_mode=False, pool_size=2, max_overflow=0
    )
    async with Database(settings, cache=None) as db:
        assert await _calls(db, 5) == 0
        calls = asyncio.create_task(_calls(db, 60))
        await asyncio.sleep(0.05)
        async with await psycopg.AsyncConnection.connect(
            darasa_database_url, autocommit=True
        ) as conn:
            await conn.execute(
                "ALTER TYPE darasa.job_infos_experience_level ADD VALUE IF NOT EXISTS 'staff'"
            )
            await conn.execute("ALTER TABLE darasa.job_info ADD COLUMN host_note text")
            await conn.execute("ALTER TABLE darasa.questions ADD COLUMN host_rank int")
        assert await calls == 0
        assert await _calls(db, 5) == 0


@pytest.mark.parametrize("prepared", [None, False], ids=["prepared", "unprepared"])
async def test_the_vector_type_recreated_under_a_running_database(
    darasa_database_url: str, prepared: bool | None
):
    """pgvector dropped and installed again (a new `vector` type) while a `Database` runs:
    each connection learns the new type and drops the cursors it keeps (they hold the adapters
    as they were), so embeddings still go and come back as floats."""
    from integration.helpers import document_input, make_user

    settings = _one_connection(darasa_database_url, prepared)
    async with Database(settings, cache=None) as db:
        user = await make_user(db, "vector")
        doc = await db.documents.create(user.id, document_input(1))
        for _ in range(2):  # prepared, and run on the cursors the connection keeps
            assert await db.documents.get(doc.id, user_id=user.id) == doc
            [match] = await db.documents.similarity_search(
                document_input(1).embedding or (), user_id=user.id, limit=1
            )
            assert match.document == doc
        await _reinstall_pgvector(darasa_database_url)

        async with Database(settings, cache=None) as other:  # another process writes first
            user = await make_user(other, "vector")
            again = await other.documents.create(user.id, document_input(2))
        assert isinstance(again.embedding, tuple)
        assert all(isinstance(x, float) for x in again.embedding)
        for _ in range(2):  # reads first, then a write
            assert await db.documents.get(again.id, user_id=user.id) == again
            [match] = await db.documents.similarity_search(
                document_input(2).embedding or (), user_id=user.id, limit=1
            )
            assert match.document == again
        third = await db.documents.create(user.id, document_input(3))
        assert await _read_elsewhere(darasa_database_url, third.id, user.id) == third.embedding
        for _ in range(2):
            assert await db.documents.get(again.id, user_id=user.id) == again
            [match] = await db.documents.similarity_search(
                document_input(2).embedding or (), user_id=user.id, limit=1
            )
            assert match.document == again


async def _read_elsewhere(url: str, id: object, user_id: str) -> tuple[float, ...] | None:
    """The embedding of document `id` as a `Database` of its own reads it."""
    async with Database(DatabaseSettings(url=url, test_mode=False), cache=None) as db:
        found = await db.documents.get(str(id), user_id=user_id)
        return None if found is None else found.embedding


def _one_connection(url: str, prepared: bool | None) -> DatabaseSettings:
    """Settings of a pool of one connection: the one whose plans and kept cursors go stale."""
    return DatabaseSettings(
        url=url, test_mode=False, pool_size=1, max_overflow=0, prepared_statements=prepared
    )


async def _reinstall_pgvector(url: str) -> None:
    """Our migrations down, pgvector dropped, everything up again: a new `vector` type."""
    await asyncio.to_thread(migrate.downgrade, url, "base")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("DROP EXTENSION vector")
    await asyncio.to_thread(migrate.upgrade, url)


@pytest.mark.parametrize("prepared", [None, False], ids=["prepared", "unprepared"])
@pytest.mark.parametrize("first", ["write", "transaction"])
async def test_the_first_call_after_pgvector_is_installed_again_may_be_a_write_or_a_transaction(
    darasa_database_url: str, prepared: bool | None, first: str
):
    """A write with an embedding is refused before it runs and sent again as the new type; a
    transaction that meets the new type fails whole (`TransactionConflictError`) and, run
    again as its `retryable` says, succeeds on a connection that knows the type."""
    from integration.helpers import document_input, make_user

    settings = _one_connection(darasa_database_url, prepared)
    async with Database(settings, cache=None) as db:
        user = await make_user(db, "first")
        doc = await db.documents.create(user.id, document_input(1))
        for _ in range(2):
            assert await db.documents.get(doc.id, user_id=user.id) == doc
        await _reinstall_pgvector(darasa_database_url)
        user = await make_user(db, "first")

        if first == "write":
            created = await db.documents.create(user.id, document_input(2))
            assert created.embedding is not None
            elsewhere = await _read_elsewhere(darasa_database_url, created.id, user.id)
            assert elsewhere == created.embedding
            return

        async with Database(settings, cache=None) as other:
            stored = await other.documents.create(user.id, document_input(2))

        async def block() -> object:
            async with db.transaction() as tx:
                return await tx.documents.get(stored.id, user_id=user.id)

        with pytest.raises(TransactionConflictError) as failed:
            await block()
        assert failed.value.retryable
        assert await block() == stored
