"""DocumentRepository against the real server: create, create_many, get, list_for_user, delete.

Similarity search has its own module, `test_similarity_search.py`.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from darasa_db import Database, NotFoundError
from darasa_db.schemas import DocumentCreate, User
from integration.helpers import document_input, row_counts, table_rows, unit_vector

MALFORMED_IDS = ["not-a-uuid", ""]


async def test_create_document_round_trips_metadata_and_embedding(darasa_db: Database, user: User):
    metadata = {"source": "cv.pdf", "page": 2, "tags": ["go", "sql"], "nested": {"ok": True}}
    embedding = unit_vector(7)

    created = await darasa_db.documents.create(
        user.id,
        DocumentCreate(
            title="CV", content="Ten years of SQL — ñ", metadata=metadata, embedding=embedding
        ),
    )

    assert (created.user_id, created.title, created.content) == (
        user.id,
        "CV",
        "Ten years of SQL — ñ",
    )
    assert created.metadata == metadata
    assert created.embedding is not None
    np.testing.assert_array_equal(created.embedding, np.asarray(embedding, dtype=np.float32))
    assert await darasa_db.documents.get(created.id, user_id=user.id) == created


async def test_create_document_without_embedding_stores_null_and_empty_metadata(
    darasa_db: Database, user: User
):
    created = await darasa_db.documents.create(user.id, DocumentCreate(title="t", content="c"))

    assert created.embedding is None
    assert created.metadata == {}


async def test_create_document_accepts_a_numpy_embedding(darasa_db: Database, user: User):
    vector = np.asarray(unit_vector(3), dtype=np.float32)

    created = await darasa_db.documents.create(
        user.id, DocumentCreate(title="t", content="c", embedding=vector)
    )

    assert created.embedding is not None
    np.testing.assert_array_equal(created.embedding, vector)


async def test_create_document_for_an_unknown_user_raises_not_found(darasa_db: Database):
    with pytest.raises(NotFoundError) as caught:
        await darasa_db.documents.create("user_nobody", document_input())

    assert caught.value.entity == "user"
    assert (await row_counts(darasa_db))["documents"] == 0


async def test_create_many_loads_every_document_and_returns_the_count(
    darasa_db: Database, user: User
):
    documents = [document_input(i) for i in range(25)]
    documents.append(DocumentCreate(title="no vector", content="plain"))

    count = await darasa_db.documents.create_many(user.id, documents)

    assert count == 26
    stored = await darasa_db.documents.list_for_user(user.id, limit=100)
    assert sorted(d.title for d in stored) == sorted(d.title for d in documents)
    by_title = {d.title: d for d in stored}
    assert by_title["doc 5"].metadata == {"seed": 5}
    assert by_title["no vector"].embedding is None
    stored_vector = by_title["doc 5"].embedding
    assert stored_vector is not None
    np.testing.assert_array_equal(stored_vector, np.asarray(unit_vector(5), dtype=np.float32))


async def test_create_many_of_nothing_returns_zero(darasa_db: Database, user: User):
    assert await darasa_db.documents.create_many(user.id, []) == 0
    assert (await row_counts(darasa_db))["documents"] == 0


async def test_create_many_for_an_unknown_user_raises_not_found_and_writes_nothing(
    darasa_db: Database, user: User
):
    with pytest.raises(NotFoundError) as caught:
        await darasa_db.documents.create_many("user_nobody", [document_input(i) for i in range(5)])

    assert caught.value.entity == "user"
    assert (await row_counts(darasa_db))["documents"] == 0


async def test_get_returns_none_for_a_missing_document(darasa_db: Database, user: User):
    await darasa_db.documents.create(user.id, document_input())

    assert await darasa_db.documents.get(uuid.uuid4(), user_id=user.id) is None


async def test_list_for_user_returns_own_documents_newest_first(
    darasa_db: Database, user: User, other_user: User
):
    made = [await darasa_db.documents.create(user.id, document_input(i)) for i in range(3)]
    await darasa_db.documents.create(other_user.id, document_input(99))

    listed = await darasa_db.documents.list_for_user(user.id)

    assert [d.id for d in listed] == [d.id for d in reversed(made)]


async def test_list_for_user_honours_limit_and_rejects_zero(darasa_db: Database, user: User):
    await darasa_db.documents.create_many(user.id, [document_input(i) for i in range(4)])

    assert len(await darasa_db.documents.list_for_user(user.id, limit=3)) == 3
    with pytest.raises(ValueError, match="limit"):
        await darasa_db.documents.list_for_user(user.id, limit=0)


async def test_delete_removes_the_document_then_reports_false(darasa_db: Database, user: User):
    document = await darasa_db.documents.create(user.id, document_input())

    assert await darasa_db.documents.delete(document.id, user_id=user.id) is True
    assert await darasa_db.documents.get(document.id, user_id=user.id) is None
    assert await darasa_db.documents.delete(document.id, user_id=user.id) is False


async def test_malformed_ids_behave_as_missing(darasa_db: Database, user: User):
    await darasa_db.documents.create(user.id, document_input())
    before = await table_rows(darasa_db)

    for bad_id in MALFORMED_IDS:
        assert await darasa_db.documents.get(bad_id, user_id=user.id) is None
        assert await darasa_db.documents.list_for_user(user.id, after=bad_id) == []
        assert await darasa_db.documents.delete(bad_id, user_id=user.id) is False

    assert await table_rows(darasa_db) == before
