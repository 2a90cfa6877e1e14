"""What only the in-memory fakes do: snapshots, nesting, standalone repositories."""

import pytest

from darasa_db import DarasaDBError
from darasa_db.schemas import DocumentCreate, JobInfoCreate, UserCreate, UserUpsert
from darasa_db.testing.fakes import (
    InMemoryDatabase,
    InMemoryJobInfoRepository,
    InMemoryStore,
    InMemoryUserRepository,
)


async def test_transaction_yields_its_own_repositories_that_end_with_the_block(darasa_memory_db):
    async with darasa_memory_db.transaction() as tx:
        assert tx is not darasa_memory_db
        await tx.users.upsert(UserUpsert(id="user_a", email="a@b.co", name="A"))
    with pytest.raises(DarasaDBError, match="transaction has ended"):
        await tx.users.get("user_a")
    assert await darasa_memory_db.users.get("user_a") is not None


async def test_a_nested_transaction_is_refused_and_the_outer_one_still_commits():
    db = InMemoryDatabase()

    async with db.transaction() as outer:
        await outer.users.upsert(UserUpsert(id="user_a", email="a@b.co", name="A"))
        with pytest.raises(DarasaDBError, match="already open in this task"):
            async with db.transaction():
                pass

    assert await db.users.get("user_a") is not None


async def test_rollback_restores_rows_changed_inside_the_block():
    db = InMemoryDatabase()
    user = await db.users.upsert(UserUpsert(id="user_a", email="a@b.co", name="A"))
    job = await db.job_infos.create(
        user.id, JobInfoCreate(name="Acme", experience_level="junior", description="d")
    )

    async def delete_then_fail() -> None:
        async with db.transaction() as tx:
            await tx.users.delete(user.id)
            raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        await delete_then_fail()

    assert await db.users.get(user.id) == user
    assert await db.job_infos.get(job.id, user_id=user.id) == job


async def test_a_standalone_repository_keeps_its_own_store():
    users = InMemoryUserRepository()

    user = await users.create(UserCreate(email="solo@b.co", name="Solo"))

    assert await users.get_by_email("SOLO@B.CO") == user
    assert await InMemoryUserRepository().get(user.id) is None


async def test_repositories_built_on_one_store_share_their_rows():
    store = InMemoryStore()
    users = InMemoryUserRepository(store)
    job_infos = InMemoryJobInfoRepository(store)

    await users.upsert(UserUpsert(id="user_s", email="s@b.co", name="S"))
    job = await job_infos.create(
        "user_s", JobInfoCreate(name="Acme", experience_level="mid-level", description="d")
    )

    assert store.tables.job_infos == {job.id: job}
    assert await users.delete("user_s") is True
    assert store.tables.job_infos == {}


def test_store_clock_is_strictly_increasing():
    store = InMemoryStore()

    times = [store.now() for _ in range(1000)]

    assert times == sorted(set(times))
    assert all(t.tzinfo is not None for t in times)


async def test_stored_metadata_is_a_copy_normalised_like_jsonb():
    db = InMemoryDatabase()
    user = await db.users.upsert(UserUpsert(id="user_m", email="m@b.co", name="M"))
    nested = {"pages": (1, 2)}

    document = await db.documents.create(
        user.id, DocumentCreate(title="t", content="c", metadata={"source": nested})
    )
    nested["pages"] = (9,)

    assert document.metadata == {"source": {"pages": [1, 2]}}


async def test_health_check_and_close_mirror_database(darasa_memory_db):
    assert await darasa_memory_db.health_check() is True
    await darasa_memory_db.close()
