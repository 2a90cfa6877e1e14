"""SQL implementation of `JobInfoRepository`."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from psycopg.rows import scalar_row
from sqlalchemy import Executable, bindparam, delete, insert, select, update

from darasa_db.cache.tags import global_tag, id_tag, job_info_tag, user_tag
from darasa_db.errors import NotFoundError
from darasa_db.models import JobInfoRow
from darasa_db.models.base import table_of
from darasa_db.repositories._rows import model_row
from darasa_db.repositories._scope import Scope
from darasa_db.repositories._statements import (
    DEFAULT_LIMIT,
    as_uuid,
    check_limit,
    keyset_page,
    notifying,
)
from darasa_db.schemas import JobInfo, JobInfoCreate, JobInfoUpdate

__all__ = ["SqlJobInfoRepository"]

t = table_of(JobInfoRow)
ENTITY = "job_infos"
ROW = model_row(JobInfo)
OWNED = (t.c.id == bindparam("id")) & (t.c.user_id == bindparam("user_id"))


def _insert() -> Executable:
    columns = ("user_id", "name", "title", "experience_level", "description")
    return notifying(insert(t).values({c: bindparam(c) for c in columns}).returning(*t.c))


def _get() -> Executable:
    return select(t).where(OWNED)


def _first_page() -> Executable:
    return keyset_page(t, t.c.user_id == bindparam("user_id"), after=False)


def _next_page() -> Executable:
    return keyset_page(t, t.c.user_id == bindparam("user_id"), after=True)


@cache
def _update(fields: frozenset[str]) -> Any:
    def build() -> Executable:
        values: dict[str, Any] = {name: bindparam(name) for name in sorted(fields)}
        return notifying(update(t).where(OWNED).values(values).returning(*t.c))

    return build


def _delete() -> Executable:
    return notifying(delete(t).where(OWNED).returning(t.c.id))


def read_tags(user_id: str, id: object) -> tuple[str, ...]:
    """Tags a cached `get` is stored under."""
    return (global_tag(ENTITY), user_tag(ENTITY, user_id), id_tag(ENTITY, id))


class SqlJobInfoRepository:
    """Job infos on PostgreSQL."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def create(self, user_id: str, data: JobInfoCreate) -> JobInfo:
        params = {**data.model_dump(), "user_id": user_id}
        tags = (user_tag(ENTITY, user_id),)
        rows = await self._scope.write(_insert, params, ROW, tags, parent_id=user_id)
        return rows[0]

    async def get(self, id: uuid.UUID | str, *, user_id: str) -> JobInfo | None:
        key = as_uuid(id)
        if key is None:
            return None
        rows = await self._scope.read(
            ("job_infos.get", key, user_id),
            read_tags(user_id, key),
            _get,
            {"id": key, "user_id": user_id},
            ROW,
        )
        return rows[0] if rows else None

    async def list_for_user(
        self, user_id: str, *, limit: int = DEFAULT_LIMIT, after: uuid.UUID | str | None = None
    ) -> list[JobInfo]:
        check_limit(limit)
        cursor = None if after is None else as_uuid(after)
        if after is not None and cursor is None:
            return []
        return await self._scope.read(
            ("job_infos.list_for_user", user_id, limit, cursor),
            (global_tag(ENTITY), user_tag(ENTITY, user_id)),
            _first_page if cursor is None else _next_page,
            {"user_id": user_id, "limit": limit, "after": cursor},
            ROW,
        )

    async def update(self, id: uuid.UUID | str, data: JobInfoUpdate, *, user_id: str) -> JobInfo:
        key = as_uuid(id)
        if key is None:
            raise NotFoundError("job_info", id)
        changes = data.changes()
        rows = await self._scope.write(
            _update(frozenset(changes)),
            {**changes, "id": key, "user_id": user_id},
            ROW,
            (user_tag(ENTITY, user_id), id_tag(ENTITY, key)),
        )
        if not rows:
            raise NotFoundError("job_info", id)
        return rows[0]

    async def delete(self, id: uuid.UUID | str, *, user_id: str) -> bool:
        key = as_uuid(id)
        if key is None:
            return False
        tags = (
            user_tag(ENTITY, user_id),
            id_tag(ENTITY, key),
            user_tag("questions", user_id),
            user_tag("interviews", user_id),
            job_info_tag("questions", key),
            job_info_tag("interviews", key),
        )
        rows = await self._scope.write(_delete, {"id": key, "user_id": user_id}, scalar_row, tags)
        return bool(rows)
