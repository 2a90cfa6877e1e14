"""What the repositories of owned rows share: every owned row carries its owner's `user_id`
(job infos, documents, conversations) and rows of a job info (questions, interviews) carry
their job info's, so every ownership check reads the row's own `user_id`, with no join.

Each repository describes its table once, at import, as a `UserOwnedTable` or a
`JobInfoChildTable`. That object builds the table's shared statements once, so `Database.sql`,
which caches by builder, compiles each of them once per schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from psycopg.rows import AsyncRowFactory
from sqlalchemy import ColumnElement, Executable, Table, bindparam, delete, select, update

from darasa_db.cache.tags import global_tag, id_tag, job_info_tag, user_tag
from darasa_db.errors import NotFoundError
from darasa_db.repositories._rows import scalar_column
from darasa_db.repositories._scope import Build, Scope
from darasa_db.repositories._statements import (
    DEFAULT_LIMIT,
    as_uuid,
    check_limit,
    children_page,
    insert_child,
    keyset_page,
    notifying,
    require,
    row_of_owner,
)
from darasa_db.schemas._common import InputModel, UpdateModel

__all__ = [
    "JobInfoChildRepository",
    "JobInfoChildTable",
    "OwnedRepository",
    "OwnedTable",
    "UserOwnedRepository",
    "UserOwnedTable",
]

E = TypeVar("E")  # the read model: JobInfo, Question, …
C = TypeVar("C", bound=InputModel)  # a child's create input: QuestionCreate, InterviewCreate
ID_ROW = scalar_column("id")


class OwnedTable(Generic[E]):
    """An owned table: its entity name (cache keys and tags), its row factory and the
    statements on one owned row, `:id` when `:user_id` owns it."""

    def __init__(
        self,
        table: Table,
        entity: str,
        row: AsyncRowFactory[E],
        columns: Sequence[ColumnElement[Any]] | None = None,
        *,
        binary: bool = False,
    ) -> None:
        self.table = table
        self.entity = entity
        self.row = row
        self.columns: tuple[ColumnElement[Any], ...] = tuple(
            table.c if columns is None else columns
        )
        """What a read of a row returns: the table's columns unless given (same names, in order)."""
        self.binary = binary
        """True when reads fetch `columns` in binary format (each has a binary loader)."""
        self.global_tag = global_tag(entity)
        self.get_key = f"{entity}.get"
        self.select_owned: Build = lambda: select(*self.columns).where(row_of_owner(table))
        self.delete_owned: Build = lambda: notifying(
            delete(table).where(row_of_owner(table)).returning(table.c.id)
        )

    def update_owned(self, fields: frozenset[str]) -> Build:
        """The UPDATE of `fields` (each bound by its name) of the owned row, returning it."""
        return _update_owned(self.table, fields)


@cache
def _update_owned(table: Table, fields: frozenset[str]) -> Build:
    def build() -> Executable:
        values: dict[str, Any] = {name: bindparam(name) for name in sorted(fields)}
        statement = update(table).where(row_of_owner(table)).values(values)
        return notifying(statement.returning(*table.c))

    return build


class UserOwnedTable(OwnedTable[E]):
    """A table whose rows carry their owner's `user_id`, and its keyset pages."""

    def __init__(
        self,
        table: Table,
        entity: str,
        row: AsyncRowFactory[E],
        columns: Sequence[ColumnElement[Any]] | None = None,
        *,
        binary: bool = False,
    ) -> None:
        super().__init__(table, entity, row, columns, binary=binary)
        self.list_key = f"{entity}.list_for_user"
        self.first_page: Build = lambda: keyset_page(
            table, table.c.user_id == bindparam("user_id"), after=False, columns=self.columns
        )
        self.next_page: Build = lambda: keyset_page(
            table, table.c.user_id == bindparam("user_id"), after=True, columns=self.columns
        )


class JobInfoChildTable(OwnedTable[E]):
    """A table whose rows belong to a job info, inserted with `columns` besides `job_info_id`
    and `user_id` (both taken from the job info)."""

    def __init__(
        self, table: Table, entity: str, row: AsyncRowFactory[E], columns: tuple[str, ...]
    ) -> None:
        super().__init__(table, entity, row)
        self.list_key = f"{entity}.list_for_job_info"
        self.insert: Build = lambda: insert_child(table, columns)
        self.children: Build = lambda: children_page(table)


class OwnedRepository(Generic[E]):
    """One owned row read, updated or deleted; another user's row behaves like a missing one.

    A subclass sets `_owned` to its table's description.
    """

    _owned: OwnedTable[E]

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def get(self, id: uuid.UUID | str, *, user_id: str) -> E | None:
        """The row if `user_id` owns it, else None (also when `id` is not a UUID)."""
        key = as_uuid(id)
        if key is None:
            return None
        owned = self._owned
        cached = self._scope.caching  # (cache keys and tags are built for a cache only)
        rows = await self._scope.read(
            (owned.get_key, key, user_id) if cached else None,
            (owned.global_tag, user_tag(owned.entity, user_id), id_tag(owned.entity, key))
            if cached
            else (),
            owned.select_owned,
            {"id": key, "user_id": user_id},
            owned.row,
            binary=owned.binary,
        )
        return rows[0] if rows else None

    async def _update(
        self, id: uuid.UUID | str, data: UpdateModel, user_id: str, *, missing: str
    ) -> E:
        """Write the fields set in `data`; `NotFoundError(missing, id)` when not owned."""
        key = as_uuid(id)
        if key is None:
            raise NotFoundError(missing, id)
        changes = data.changes()
        row = await self._write_owned(
            self._owned.update_owned(frozenset(changes)), key, user_id, changes
        )
        if row is None:
            raise NotFoundError(missing, id)
        return row

    async def _write_owned(
        self, build: Build, key: uuid.UUID, user_id: str, params: dict[str, Any]
    ) -> E | None:
        """The row a write of the owned row `key` returns, or None when it is not owned."""
        entity = self._owned.entity
        rows = await self._scope.write(
            build,
            {**params, "id": key, "user_id": user_id},
            self._owned.row,
            (user_tag(entity, user_id), id_tag(entity, key)),
        )
        return rows[0] if rows else None

    async def _delete(self, id: uuid.UUID | str, user_id: str) -> bool:
        key = as_uuid(id)
        if key is None:
            return False
        rows = await self._scope.write(
            self._owned.delete_owned,
            {"id": key, "user_id": user_id},
            ID_ROW,
            self._delete_tags(user_id, key),
        )
        return bool(rows)

    def _delete_tags(self, user_id: str, key: uuid.UUID) -> tuple[str, ...]:
        """The tags a delete of the row `key` invalidates."""
        return (user_tag(self._owned.entity, user_id), id_tag(self._owned.entity, key))


class UserOwnedRepository(OwnedRepository[E]):
    """Rows that carry their owner's `user_id`: `get`, `list_for_user` and `delete`."""

    _owned: UserOwnedTable[E]

    async def list_for_user(
        self, user_id: str, *, limit: int = DEFAULT_LIMIT, after: uuid.UUID | str | None = None
    ) -> list[E]:
        """Newest first; `after` is the id of the last item of the previous page."""
        check_limit(limit)
        cursor = None if after is None else as_uuid(after)
        if after is not None and cursor is None:
            return []
        owned = self._owned
        cached = self._scope.caching
        return await self._scope.read(
            (owned.list_key, user_id, limit, cursor) if cached else None,
            (owned.global_tag, user_tag(owned.entity, user_id)) if cached else (),
            owned.first_page if cursor is None else owned.next_page,
            {"user_id": user_id, "limit": limit, "after": cursor},
            owned.row,
            binary=owned.binary,
        )

    async def delete(self, id: uuid.UUID | str, *, user_id: str) -> bool:
        """Delete the row; False when missing or not owned."""
        return await self._delete(id, user_id)


class JobInfoChildRepository(OwnedRepository[E], Generic[E, C]):
    """Rows of a job info, owned by its user: `create`, `get` and `list_for_job_info`."""

    _owned: JobInfoChildTable[E]
    _input: type[C]

    async def create(self, job_info_id: uuid.UUID | str, data: C, *, user_id: str) -> E:
        """Insert a row; `NotFoundError` when the job info is missing or not owned."""
        require(data, self._input)
        parent = as_uuid(job_info_id)
        if parent is None:
            raise NotFoundError("job_info", job_info_id)
        entity = self._owned.entity
        tags = (user_tag(entity, user_id), job_info_tag(entity, parent))
        params = {**data.model_dump(), "job_info_id": parent, "user_id": user_id}
        rows = await self._scope.write(self._owned.insert, params, self._owned.row, tags)
        if not rows:
            raise NotFoundError("job_info", job_info_id)
        return rows[0]

    async def list_for_job_info(self, job_info_id: uuid.UUID | str, *, user_id: str) -> list[E]:
        """The job info's rows, newest first (empty when not owned)."""
        parent = as_uuid(job_info_id)
        if parent is None:
            return []
        owned = self._owned
        cached = self._scope.caching
        return await self._scope.read(
            (owned.list_key, parent, user_id) if cached else None,
            (owned.global_tag, user_tag(owned.entity, user_id), job_info_tag(owned.entity, parent))
            if cached
            else (),
            owned.children,
            {"job_info_id": parent, "user_id": user_id},
            owned.row,
        )
