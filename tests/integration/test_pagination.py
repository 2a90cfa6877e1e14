"""Keyset pagination of the `list_for_user` methods: newest first, disjoint, complete, stable."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from darasa_db import Database, Transaction
from darasa_db.schemas import ConversationCreate, User
from integration.helpers import document_input, job_info_input

Repos = Database | Transaction
Create = Callable[[Repos, str, int], Awaitable[Any]]
Lister = Callable[[Database, str, int, uuid.UUID | None], Awaitable[list[Any]]]

KINDS: dict[str, tuple[Create, Lister]] = {
    "job_infos": (
        lambda r, user_id, i: r.job_infos.create(user_id, job_info_input(name=f"j{i}")),
        lambda db, user_id, limit, after: db.job_infos.list_for_user(
            user_id, limit=limit, after=after
        ),
    ),
    "documents": (
        lambda r, user_id, i: r.documents.create(user_id, document_input(i)),
        lambda db, user_id, limit, after: db.documents.list_for_user(
            user_id, limit=limit, after=after
        ),
    ),
    "conversations": (
        lambda r, user_id, i: r.conversations.create(user_id, ConversationCreate(title=f"c{i}")),
        lambda db, user_id, limit, after: db.conversations.list_for_user(
            user_id, limit=limit, after=after
        ),
    ),
}


def newest_first(rows: list[Any]) -> list[uuid.UUID]:
    return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]


async def read_all_pages(
    db: Database, lister: Lister, user_id: str, limit: int, between: Callable[[], Awaitable[Any]]
) -> list[list[uuid.UUID]]:
    pages: list[list[uuid.UUID]] = []
    after: uuid.UUID | None = None
    while True:
        page = await lister(db, user_id, limit, after)
        assert len(page) <= limit
        if not page:
            return pages
        pages.append([row.id for row in page])
        after = page[-1].id
        await between()


@pytest.mark.parametrize("kind", list(KINDS))
async def test_pages_are_newest_first_disjoint_and_complete_across_equal_timestamps(
    darasa_db: Database, user: User, other_user: User, kind: str
):
    create, lister = KINDS[kind]
    rows = [await create(darasa_db, user.id, i) for i in range(4)]
    async with darasa_db.transaction() as tx:  # one transaction: equal created_at
        tied = [await create(tx, user.id, 10 + i) for i in range(9)]
    rows += tied + [await create(darasa_db, user.id, 20 + i) for i in range(2)]
    await create(darasa_db, other_user.id, 99)
    assert len({r.created_at for r in tied}) == 1

    pages = await read_all_pages(darasa_db, lister, user.id, 4, _nothing)

    assert [len(p) for p in pages] == [4, 4, 4, 3]
    flat = [row_id for page in pages for row_id in page]
    assert len(set(flat)) == len(flat)
    assert flat == newest_first(rows)


@pytest.mark.parametrize("kind", list(KINDS))
async def test_rows_added_while_paging_do_not_shift_later_pages(
    darasa_db: Database, user: User, kind: str
):
    create, lister = KINDS[kind]
    async with darasa_db.transaction() as tx:
        rows = [await create(tx, user.id, i) for i in range(7)]
    added: list[Any] = []

    async def add_one() -> None:
        added.append(await create(darasa_db, user.id, 50 + len(added)))

    pages = await read_all_pages(darasa_db, lister, user.id, 3, add_one)

    flat = [row_id for page in pages for row_id in page]
    assert flat == newest_first(rows)
    assert len(added) == 3
    first_page = await lister(darasa_db, user.id, 3, None)
    assert [r.id for r in first_page] == newest_first(added)


@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_page_after_the_last_row_is_empty(darasa_db: Database, user: User, kind: str):
    create, lister = KINDS[kind]
    rows = [await create(darasa_db, user.id, i) for i in range(2)]
    oldest = newest_first(rows)[-1]

    assert await lister(darasa_db, user.id, 10, oldest) == []


async def test_list_for_user_returns_50_rows_by_default(darasa_db: Database, user: User):
    await darasa_db.documents.create_many(user.id, [document_input(i) for i in range(55)])

    first = await darasa_db.documents.list_for_user(user.id)
    rest = await darasa_db.documents.list_for_user(user.id, after=first[-1].id)

    assert (len(first), len(rest)) == (50, 5)
    assert {d.id for d in first}.isdisjoint(d.id for d in rest)


async def _nothing() -> None:
    return None
