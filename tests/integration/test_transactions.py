"""`db.transaction()`: all or nothing, failed statements fail it, its reads see its writes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from darasa_db import ConflictError, DarasaDBError, Database, NotFoundError
from darasa_db.schemas import ConversationCreate, User, UserCreate
from integration.helpers import document_input, job_info_input, row_counts


class Boom(Exception):
    pass


@pytest.mark.embedded_smoke
async def test_a_transaction_that_raises_after_two_writes_leaves_neither(
    darasa_db: Database, user: User
):
    before = await row_counts(darasa_db)
    written: list[Any] = []

    async def work() -> None:
        async with darasa_db.transaction() as tx:
            written.append(await tx.job_infos.create(user.id, job_info_input()))
            written.append(await tx.conversations.create(user.id, ConversationCreate(title="t")))
            raise Boom

    with pytest.raises(Boom):
        await work()

    assert len(written) == 2
    assert await row_counts(darasa_db) == before
    assert await darasa_db.job_infos.get(written[0].id, user_id=user.id) is None
    assert await darasa_db.conversations.list_for_user(user.id) == []


async def test_a_transaction_commits_all_its_writes(darasa_db: Database, user: User):
    async with darasa_db.transaction() as tx:
        job = await tx.job_infos.create(user.id, job_info_input())
        conversation = await tx.conversations.create(user.id, ConversationCreate(title="t"))

    assert await darasa_db.job_infos.get(job.id, user_id=user.id) == job
    assert await darasa_db.conversations.get(conversation.id, user_id=user.id) == conversation


async def test_a_caught_conflict_fails_the_transaction_instead_of_committing(
    darasa_db: Database, user: User
):
    before = await row_counts(darasa_db)

    async def work() -> None:
        async with darasa_db.transaction() as tx:
            await tx.job_infos.create(user.id, job_info_input())
            with pytest.raises(ConflictError):
                await tx.users.create(UserCreate(email=user.email.upper(), name="Twin"))

    with pytest.raises(DarasaDBError, match="rolled back"):
        await work()

    assert await row_counts(darasa_db) == before


async def test_a_caught_unknown_parent_fails_the_transaction_too(darasa_db: Database, user: User):
    async def work() -> None:
        async with darasa_db.transaction() as tx:
            await tx.conversations.create(user.id, ConversationCreate(title="t"))
            with pytest.raises(NotFoundError):
                await tx.job_infos.create("user_nobody", job_info_input())

    with pytest.raises(DarasaDBError, match="rolled back"):
        await work()

    assert (await row_counts(darasa_db))["conversations"] == 0


async def test_a_caught_missing_row_does_not_fail_the_transaction(darasa_db: Database, user: User):
    async with darasa_db.transaction() as tx:
        conversation = await tx.conversations.create(user.id, ConversationCreate(title="t"))
        with pytest.raises(NotFoundError):  # no statement failed: nothing matched
            await tx.conversations.rename(uuid.uuid4(), "x", user_id=user.id)

    assert await darasa_db.conversations.get(conversation.id, user_id=user.id) == conversation


async def test_reads_inside_a_transaction_see_its_own_writes_and_others_do_not(
    darasa_db: Database, user: User
):
    async with darasa_db.transaction() as tx:
        job = await tx.job_infos.create(user.id, job_info_input())
        document = await tx.documents.create(user.id, document_input(1))

        assert await tx.job_infos.get(job.id, user_id=user.id) == job
        assert [j.id for j in await tx.job_infos.list_for_user(user.id)] == [job.id]
        assert await tx.documents.get(document.id, user_id=user.id) == document
        assert await darasa_db.job_infos.get(job.id, user_id=user.id) is None  # not committed

    assert await darasa_db.job_infos.get(job.id, user_id=user.id) == job


async def test_a_commit_invalidates_cached_lists(darasa_db: Database, user: User):
    first = await darasa_db.job_infos.create(user.id, job_info_input(name="first"))
    assert [j.id for j in await darasa_db.job_infos.list_for_user(user.id)] == [first.id]
    assert [j.id for j in await darasa_db.job_infos.list_for_user(user.id)] == [first.id]

    async with darasa_db.transaction() as tx:
        second = await tx.job_infos.create(user.id, job_info_input(name="second"))

    listed = await darasa_db.job_infos.list_for_user(user.id)
    assert [j.id for j in listed] == [second.id, first.id]


async def test_create_many_inside_a_transaction_rolls_back_with_it(darasa_db: Database, user: User):
    async def work() -> None:
        async with darasa_db.transaction() as tx:
            assert await tx.documents.create_many(user.id, [document_input(i) for i in range(5)])
            assert len(await tx.documents.list_for_user(user.id)) == 5
            raise Boom

    with pytest.raises(Boom):
        await work()

    assert (await row_counts(darasa_db))["documents"] == 0


async def test_a_failed_create_many_inside_a_transaction_undoes_only_itself(
    darasa_db: Database, user: User
):
    async with darasa_db.transaction() as tx:
        job = await tx.job_infos.create(user.id, job_info_input())
        with pytest.raises(NotFoundError):
            await tx.documents.create_many("user_nobody", [document_input(1)])

    assert await darasa_db.job_infos.get(job.id, user_id=user.id) == job
    assert (await row_counts(darasa_db))["documents"] == 0
