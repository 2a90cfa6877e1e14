"""A `Transaction` has a lifecycle: it ends with its block, its calls take turns, it cannot be
opened twice in one task, and a pool-level write inside it is refused instead of deadlocking."""

from __future__ import annotations

import asyncio

import pytest

from darasa_db import DarasaDBError, Database, NotFoundError
from darasa_db.schemas import DocumentCreate, JobInfoCreate, UserUpdate, UserUpsert


def _job(name: str = "Acme") -> JobInfoCreate:
    return JobInfoCreate(name=name, experience_level="senior", description="d")


async def _user(db: Database, name: str = "ada") -> str:
    user = await db.users.upsert(UserUpsert(id=name, email=f"{name}@example.com", name=name))
    return user.id


async def test_every_use_of_a_transaction_after_its_block_raises_and_writes_nothing(
    darasa_db: Database,
):
    user_id = await _user(darasa_db)
    async with darasa_db.transaction() as tx:
        job = await tx.job_infos.create(user_id, _job())

    with pytest.raises(DarasaDBError, match="transaction has ended"):
        await tx.users.update(user_id, UserUpdate(name="stale"))
    with pytest.raises(DarasaDBError, match="transaction has ended"):
        await tx.job_infos.create(user_id, _job("late"))
    with pytest.raises(DarasaDBError, match="transaction has ended"):
        await tx.job_infos.get(job.id, user_id=user_id)
    with pytest.raises(DarasaDBError, match="transaction has ended"):
        await tx.documents.create_many(user_id, [DocumentCreate(title="t", content="c")])
    with pytest.raises(DarasaDBError, match="transaction has ended"):
        _ = tx.connection

    user = await darasa_db.users.get(user_id)
    assert user is not None
    assert user.name == "ada"
    assert [j.id for j in await darasa_db.job_infos.list_for_user(user_id)] == [job.id]
    assert await darasa_db.documents.list_for_user(user_id) == []


async def test_a_stale_transaction_cannot_write_into_the_next_one(darasa_db: Database):
    user_id = await _user(darasa_db)
    async with darasa_db.transaction() as stale:
        pass

    async def next_transaction() -> None:
        async with darasa_db.transaction() as tx:
            await tx.job_infos.create(user_id, _job("next"))
            await asyncio.sleep(0.05)
            raise KeyError("rolled back")

    task = asyncio.create_task(next_transaction())
    await asyncio.sleep(0.01)
    with pytest.raises(DarasaDBError, match="transaction has ended"):
        await stale.users.update(user_id, UserUpdate(name="acknowledged?"))
    with pytest.raises(KeyError):
        await task
    user = await darasa_db.users.get(user_id)
    assert user is not None
    assert user.name == "ada"


@pytest.mark.parametrize("run", range(3))
async def test_concurrent_calls_on_one_transaction_take_turns_and_lose_no_write(
    darasa_db: Database, run: int
):
    user_id = await _user(darasa_db)
    documents = [DocumentCreate(title=f"d{i}", content="c") for i in range(200)]
    async with darasa_db.transaction() as tx:
        # the bulk load fails (no such user) and rolls back to its savepoint ...
        bulk = asyncio.create_task(tx.documents.create_many("no-such-user", documents))
        await asyncio.sleep(0)
        # ... while this write, acknowledged meanwhile, must survive it
        updated = await tx.users.update(user_id, UserUpdate(name=f"kept {run}"))
        with pytest.raises(NotFoundError):
            await bulk
    assert updated.name == f"kept {run}"
    user = await darasa_db.users.get(user_id)
    assert user is not None
    assert user.name == f"kept {run}"


async def test_a_second_transaction_in_the_same_task_is_refused_not_deadlocked(
    darasa_db: Database,
):
    user_id = await _user(darasa_db)
    async with asyncio.timeout(10):
        async with darasa_db.transaction() as tx:
            await tx.users.update(user_id, UserUpdate(name="outer"))
            with pytest.raises(DarasaDBError, match="already open in this task"):
                async with darasa_db.transaction() as inner:
                    await inner.users.update(user_id, UserUpdate(name="inner"))
            with pytest.raises(DarasaDBError, match=r"use tx\.<repository>"):
                await darasa_db.users.update(user_id, UserUpdate(name="pool"))
            assert await darasa_db.users.get(user_id) is not None  # reads are fine
    user = await darasa_db.users.get(user_id)
    assert user is not None
    assert user.name == "outer"


async def test_tasks_of_their_own_open_transactions_of_their_own(darasa_db: Database):
    user_id = await _user(darasa_db)
    other_id = await _user(darasa_db, "bob")
    started = asyncio.Event()

    async def request(id: str, name: str) -> None:  # like a web request: a task of its own
        async with darasa_db.transaction() as tx:
            await tx.users.update(id, UserUpdate(name=name))
            started.set()
            await asyncio.sleep(0.02)

    first = asyncio.create_task(request(user_id, "ada 2"))
    await started.wait()
    second = asyncio.create_task(request(other_id, "bob 2"))
    await asyncio.gather(first, second)

    async with darasa_db.transaction():  # a task spawned in a block, run after it ended
        later = asyncio.create_task(request(user_id, "ada 3"))
    await later

    names = [await darasa_db.users.get(i) for i in (user_id, other_id)]
    assert [u.name for u in names if u is not None] == ["ada 3", "bob 2"]


async def test_a_caught_statement_error_fails_the_transaction(darasa_db: Database):
    user_id = await _user(darasa_db)
    await _user(darasa_db, "taken")

    async def block_that_catches_a_failed_statement() -> None:
        async with darasa_db.transaction() as tx:
            await tx.job_infos.create(user_id, _job("lost"))
            with pytest.raises(DarasaDBError):  # a duplicate email: the statement failed
                await tx.users.update(user_id, UserUpdate(email="taken@example.com"))

    with pytest.raises(DarasaDBError, match="failed, so it was rolled back"):
        await block_that_catches_a_failed_statement()
    assert await darasa_db.job_infos.list_for_user(user_id) == []
