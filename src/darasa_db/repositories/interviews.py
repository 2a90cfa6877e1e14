"""SQL implementation of `InterviewRepository` (ownership through the job info)."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from sqlalchemy import Executable, bindparam, select, update

from darasa_db.cache.tags import global_tag, id_tag, job_info_tag, user_tag
from darasa_db.errors import NotFoundError
from darasa_db.models import InterviewRow
from darasa_db.models.base import table_of
from darasa_db.repositories._rows import model_row
from darasa_db.repositories._scope import Scope
from darasa_db.repositories._statements import (
    as_uuid,
    child_of_owner,
    children_page,
    insert_child,
    notifying,
)
from darasa_db.schemas import Interview, InterviewCreate, InterviewUpdate

__all__ = ["SqlInterviewRepository"]

t = table_of(InterviewRow)
ENTITY = "interviews"
ROW = model_row(Interview)


def _insert() -> Executable:
    return insert_child(t, ("duration", "hume_chat_id", "feedback"))


def _get() -> Executable:
    return select(t).where(child_of_owner(t))


def _list() -> Executable:
    return children_page(t)


@cache
def _update(fields: frozenset[str]) -> Any:
    def build() -> Executable:
        values: dict[str, Any] = {name: bindparam(name) for name in sorted(fields)}
        return notifying(update(t).where(child_of_owner(t)).values(values).returning(*t.c))

    return build


class SqlInterviewRepository:
    """Interviews on PostgreSQL."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def create(
        self, job_info_id: uuid.UUID | str, data: InterviewCreate, *, user_id: str
    ) -> Interview:
        parent = as_uuid(job_info_id)
        if parent is None:
            raise NotFoundError("job_info", job_info_id)
        tags = (user_tag(ENTITY, user_id), job_info_tag(ENTITY, parent))
        params = {**data.model_dump(), "job_info_id": parent, "user_id": user_id}
        rows = await self._scope.write(_insert, params, ROW, tags)
        if not rows:
            raise NotFoundError("job_info", job_info_id)
        return rows[0]

    async def get(self, id: uuid.UUID | str, *, user_id: str) -> Interview | None:
        key = as_uuid(id)
        if key is None:
            return None
        rows = await self._scope.read(
            ("interviews.get", key, user_id),
            (global_tag(ENTITY), user_tag(ENTITY, user_id), id_tag(ENTITY, key)),
            _get,
            {"id": key, "user_id": user_id},
            ROW,
        )
        return rows[0] if rows else None

    async def list_for_job_info(
        self, job_info_id: uuid.UUID | str, *, user_id: str
    ) -> list[Interview]:
        parent = as_uuid(job_info_id)
        if parent is None:
            return []
        return await self._scope.read(
            ("interviews.list_for_job_info", parent, user_id),
            (global_tag(ENTITY), user_tag(ENTITY, user_id), job_info_tag(ENTITY, parent)),
            _list,
            {"job_info_id": parent, "user_id": user_id},
            ROW,
        )

    async def update(
        self, id: uuid.UUID | str, data: InterviewUpdate, *, user_id: str
    ) -> Interview:
        key = as_uuid(id)
        if key is None:
            raise NotFoundError("interview", id)
        changes = data.changes()
        rows = await self._scope.write(
            _update(frozenset(changes)),
            {**changes, "id": key, "user_id": user_id},
            ROW,
            (user_tag(ENTITY, user_id), id_tag(ENTITY, key)),
        )
        if not rows:
            raise NotFoundError("interview", id)
        return rows[0]
