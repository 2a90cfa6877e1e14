"""Ids and emails PostgreSQL cannot store (NUL, lone surrogates) behave as missing rows."""

from __future__ import annotations

import uuid

import pytest

from darasa_db import Database, NotFoundError
from darasa_db.schemas import (
    ConversationCreate,
    DocumentCreate,
    JobInfoCreate,
    JobInfoUpdate,
    Message,
    User,
    UserUpdate,
)
from integration.helpers import row_counts

UNSTORABLE = ["user\x00id", "user\ud800id"]


@pytest.mark.parametrize("key", UNSTORABLE)
async def test_lookups_with_unstorable_keys_find_nothing(darasa_db: Database, user: User, key: str):
    before = await row_counts(darasa_db)

    assert await darasa_db.users.get(key) is None
    assert await darasa_db.users.get_by_email(key) is None
    assert await darasa_db.users.delete(key) is False
    with pytest.raises(NotFoundError):
        await darasa_db.users.update(key, UserUpdate(name="x"))
    assert await darasa_db.job_infos.list_for_user(key) == []
    assert await darasa_db.job_infos.get(uuid.uuid4(), user_id=key) is None
    assert await darasa_db.documents.delete(uuid.uuid4(), user_id=key) is False
    with pytest.raises(NotFoundError):
        await darasa_db.job_infos.update(uuid.uuid4(), JobInfoUpdate(name="x"), user_id=key)
    with pytest.raises(NotFoundError):
        await darasa_db.conversations.append_messages(
            uuid.uuid4(), [Message(role="user", content="hi")], user_id=key
        )

    assert await row_counts(darasa_db) == before


@pytest.mark.parametrize("key", UNSTORABLE)
async def test_creating_under_an_unstorable_user_id_is_not_found(darasa_db: Database, key: str):
    before = await row_counts(darasa_db)
    job = JobInfoCreate(name="n", experience_level="junior", description="d")

    with pytest.raises(NotFoundError):
        await darasa_db.job_infos.create(key, job)
    with pytest.raises(NotFoundError):
        await darasa_db.conversations.create(key, ConversationCreate(title="t"))
    with pytest.raises(NotFoundError):
        await darasa_db.documents.create(key, DocumentCreate(title="t", content="c"))
    with pytest.raises(NotFoundError):
        await darasa_db.documents.create_many(key, [DocumentCreate(title="t", content="c")])
    async with darasa_db.transaction() as tx:  # the transaction stays usable
        with pytest.raises(NotFoundError):
            await tx.job_infos.create(key, job)
        assert await tx.job_infos.list_for_user(key) == []

    assert await row_counts(darasa_db) == before
