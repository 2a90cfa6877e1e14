"""Errors that mean what they say: each class, and whether running the call again may help."""

from __future__ import annotations

import asyncio

import pytest

from darasa_db import (
    ConflictError,
    DarasaDBError,
    Database,
    DatabaseSettings,
    DatabaseUnavailableError,
    NotFoundError,
    QueryTimeoutError,
    TransactionConflictError,
    rls,
)
from darasa_db.schemas import DocumentCreate, JobInfoCreate, UserCreate, UserUpdate, UserUpsert

LONG_ID = "u" * 3000  # longer than any user id can be (255)


def _job() -> JobInfoCreate:
    return JobInfoCreate(name="Acme", experience_level="junior", description="d")


async def test_ids_longer_than_the_column_name_no_row(darasa_db: Database):
    assert await darasa_db.users.get(LONG_ID) is None
    assert await darasa_db.job_infos.list_for_user(LONG_ID) == []
    assert await darasa_db.users.delete(LONG_ID) is False
    with pytest.raises(NotFoundError):
        await darasa_db.job_infos.create(LONG_ID, _job())
    with pytest.raises(NotFoundError):
        await darasa_db.users.update(LONG_ID, UserUpdate(name="x"))
    with pytest.raises(NotFoundError):
        await darasa_db.documents.create_many(LONG_ID, [DocumentCreate(title="t", content="c")])


async def test_every_error_says_whether_a_retry_may_help(darasa_db: Database):
    await darasa_db.users.create(UserCreate(id="a", email="a@example.com", name="A"))
    with pytest.raises(ConflictError) as conflict:
        await darasa_db.users.create(UserCreate(id="b", email="A@example.com", name="B"))
    assert conflict.value.retryable is False
    with pytest.raises(NotFoundError) as missing:
        await darasa_db.job_infos.create("nobody", _job())
    assert missing.value.retryable is False
    assert DatabaseUnavailableError("h", 1, "down").retryable is True
    assert TransactionConflictError("x").retryable is True


async def _sql(db: Database, *statements: str) -> None:
    async with db.connection() as conn:
        for statement in statements:
            await conn.execute(statement)


async def test_a_program_limit_is_not_reported_as_an_unavailable_server(darasa_db: Database):
    too_long = "INSERT INTO big SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g"
    with pytest.raises(DarasaDBError) as caught:  # SQLSTATE 54000: the statement, not the server
        await _sql(darasa_db, "CREATE TEMP TABLE big (t text PRIMARY KEY)", too_long)
    assert not isinstance(caught.value, DatabaseUnavailableError)
    assert caught.value.retryable is False


async def test_a_deadlock_is_a_retryable_transaction_conflict(darasa_db: Database):
    for name in ("a", "b"):
        await darasa_db.users.upsert(UserUpsert(id=name, email=f"{name}@example.com", name=name))
    both_locked_one = asyncio.Barrier(2)

    async def lock(first: str, second: str) -> None:
        async with darasa_db.transaction() as tx:
            await tx.users.update(first, UserUpdate(name=f"{first}!"))
            await both_locked_one.wait()
            await tx.users.update(second, UserUpdate(name=f"{second}!"))

    results = await asyncio.gather(lock("a", "b"), lock("b", "a"), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], TransactionConflictError)
    assert errors[0].retryable


async def test_a_serialization_failure_is_a_retryable_transaction_conflict(darasa_db: Database):
    await darasa_db.users.upsert(UserUpsert(id="s", email="s@example.com", name="S"))
    started = asyncio.Barrier(2)

    async def serializable(name: str) -> None:
        async with darasa_db.transaction() as tx:
            await tx.connection.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            await tx.users.get("s")
            await started.wait()
            await tx.users.update("s", UserUpdate(name=name))

    results = await asyncio.gather(serializable("x"), serializable("y"), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], TransactionConflictError)


async def test_a_lock_wait_past_lock_timeout_is_a_transaction_conflict(darasa_database_url: str):
    settings = DatabaseSettings(url=darasa_database_url, test_mode=True, lock_timeout=0.2)
    async with Database(settings, cache=None) as db:
        await db.users.upsert(UserUpsert(id="l", email="l@example.com", name="L"))
        locked, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with db.transaction() as tx:
                await tx.users.update("l", UserUpdate(name="holder"))
                locked.set()
                await release.wait()

        task = asyncio.create_task(holder())
        await locked.wait()
        try:
            with pytest.raises(TransactionConflictError, match="lock"):
                await db.users.update("l", UserUpdate(name="waiter"))
        finally:
            release.set()
            await task


async def test_statement_timeout_is_not_retryable(darasa_database_url: str):
    settings = DatabaseSettings(url=darasa_database_url, test_mode=True, statement_timeout=0.1)
    async with Database(settings, cache=None) as db:
        with pytest.raises(QueryTimeoutError) as caught:
            await _sql(db, "SELECT pg_sleep(1)")
    assert caught.value.retryable is False


async def test_a_database_never_migrated_says_how_to_migrate(darasa_server):
    from darasa_db.testing.plugin import create_database, drop_database

    url = create_database(darasa_server.url, "darasa_never_migrated")
    try:
        async with Database(DatabaseSettings(url=url, test_mode=True), cache=None) as db:
            with pytest.raises(DarasaDBError, match="darasa-db migrate"):
                await db.users.get("anyone")
    finally:
        drop_database(darasa_server.url, "darasa_never_migrated")


async def test_row_level_security_bulk_loads_twice_in_one_transaction(darasa_database_url: str):
    await asyncio.to_thread(rls.enable, darasa_database_url, force=True)
    settings = DatabaseSettings(url=darasa_database_url, test_mode=True, row_level_security=True)
    async with Database(settings, cache=None) as db:
        await db.users.upsert(UserUpsert(id="r", email="r@example.com", name="R"))
        async with db.transaction() as tx:
            for batch in range(3):
                docs = [DocumentCreate(title=f"{batch}-{i}", content="c") for i in range(5)]
                assert await tx.documents.create_many("r", docs) == 5
        assert len(await db.documents.list_for_user("r")) == 15


async def test_a_wrong_password_or_database_is_unavailable_but_not_retryable(
    darasa_database_url: str,
):
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(darasa_database_url)
    user, _, host = parts.netloc.rpartition("@")
    wrong_password = urlunsplit(parts._replace(netloc=f"{user.split(':')[0]}:nope@{host}"))
    no_database = urlunsplit(parts._replace(path="/no_such_database"))
    for url in (wrong_password, no_database):
        async with Database(DatabaseSettings(url=url, test_mode=True), cache=None) as db:
            with pytest.raises(DatabaseUnavailableError) as caught:
                await db.users.get("anyone")
        assert caught.value.retryable is False, caught.value
