"""Job infos and documents are read in binary format (a job info's enum column as text): `get`
and `list_for_user` return what the writes returned, value for value and type for type, on the
pool and inside a transaction (behind PgBouncer: tests/pooler/test_hot_path_pooler.py); a
result of other columns still raises."""

from __future__ import annotations

import pytest

from darasa_db import Database, Transaction
from darasa_db.errors import StatementMismatchError
from darasa_db.repositories import job_infos
from darasa_db.schemas import Document, DocumentCreate, JobInfo, User
from integration.helpers import document_input, job_info_input

LEVELS = ("junior", "mid-level", "senior")


def _same(read: JobInfo, written: JobInfo) -> None:
    """Equal, and each field of the same type (an enum read as bytes would compare unequal
    anyway, a timestamp in another zone would not)."""
    assert read == written
    for name in JobInfo.model_fields:
        value, expected = getattr(read, name), getattr(written, name)
        assert type(value) is type(expected), name
        if name.endswith("_at"):
            assert value.utcoffset() == expected.utcoffset(), name


async def _create_three(db: Database | Transaction, user: User) -> list[JobInfo]:
    """One job info per experience level, the last without a title (a NULL column)."""
    return [
        await db.job_infos.create(
            user.id,
            job_info_input(name=f"job {i}", experience_level=level, title=None if i == 2 else "t"),
        )
        for i, level in enumerate(LEVELS)
    ]


async def _check_reads(db: Database | Transaction, user: User, created: list[JobInfo]) -> None:
    """get, the first page and the next page."""
    for job in created:
        fetched = await db.job_infos.get(job.id, user_id=user.id)
        assert fetched is not None
        _same(fetched, job)
    page = await db.job_infos.list_for_user(user.id)
    newest_first = sorted(created, key=lambda job: (job.created_at, job.id), reverse=True)
    assert len(page) == len(created)
    for read, written in zip(page, newest_first, strict=True):  # (one transaction: one now())
        _same(read, written)
    rest = await db.job_infos.list_for_user(user.id, limit=2, after=page[0].id)
    assert [job.id for job in rest] == [job.id for job in page[1:]]


async def test_binary_reads_equal_what_the_writes_returned(darasa_db: Database, user: User) -> None:
    created = await _create_three(darasa_db, user)
    assert [job.experience_level for job in created] == list(LEVELS)
    await _check_reads(darasa_db, user, created)


async def test_binary_reads_inside_a_transaction_see_its_own_writes(
    darasa_db: Database, user: User
) -> None:
    async with darasa_db.transaction() as tx:
        created = await _create_three(tx, user)
        await _check_reads(tx, user, created)


async def test_binary_reads_of_another_user_find_nothing(
    darasa_db: Database, user: User, other_user: User
) -> None:
    job = (await _create_three(darasa_db, user))[0]
    assert await darasa_db.job_infos.get(job.id, user_id=other_user.id) is None
    assert await darasa_db.job_infos.list_for_user(other_user.id) == []


async def test_a_binary_result_of_other_columns_still_raises(
    darasa_db: Database, user: User
) -> None:
    job = (await _create_three(darasa_db, user))[0]
    sql = (
        "SELECT id, user_id, name, title, experience_level::text AS level, description,"
        " created_at, updated_at FROM darasa.job_info WHERE id = %s"
    )
    async with darasa_db.connection() as conn:
        cur = conn.cursor(row_factory=job_infos.ROW, binary=True)
        with pytest.raises(StatementMismatchError) as caught:
            await cur.execute(sql, (job.id,))
    assert "level" in caught.value.got


def _same_document(read: Document | None, written: Document) -> None:
    """Equal, the embedding float for float (float4 values, as the write returned them)."""
    assert read == written
    assert read is not None
    assert read.embedding == written.embedding
    assert read.metadata == written.metadata
    assert type(read.metadata) is type(written.metadata)


async def _create_documents(db: Database | Transaction, user: User) -> list[Document]:
    """Documents with an embedding, nested metadata, and one with neither."""
    return [
        await db.documents.create(user.id, document_input(1, metadata={"a": [1, {"b": None}]})),
        await db.documents.create(user.id, DocumentCreate(title="bare", content="no vector")),
        await db.documents.create(user.id, document_input(3, metadata={"é": "ñ", "n": 1.5})),
    ]


async def _check_document_reads(
    db: Database | Transaction, user: User, created: list[Document]
) -> None:
    for document in created:
        _same_document(await db.documents.get(document.id, user_id=user.id), document)
    page = await db.documents.list_for_user(user.id)
    newest_first = sorted(created, key=lambda d: (d.created_at, d.id), reverse=True)
    assert len(page) == len(created)
    for read, written in zip(page, newest_first, strict=True):
        _same_document(read, written)


async def test_binary_document_reads_equal_what_the_writes_returned(
    darasa_db: Database, user: User
) -> None:
    created = await _create_documents(darasa_db, user)
    assert created[1].embedding is None
    await _check_document_reads(darasa_db, user, created)


async def test_binary_document_reads_inside_a_transaction(darasa_db: Database, user: User) -> None:
    async with darasa_db.transaction() as tx:
        created = await _create_documents(tx, user)
        await _check_document_reads(tx, user, created)
